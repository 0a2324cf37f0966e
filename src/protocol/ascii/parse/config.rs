//! `config get <key>`: ElastiCache's cluster auto-discovery command
//! (memcached itself has no `config`). Only the exact three-token form is a
//! request; `config`, `config set …`, `config get` without a key or with
//! extra tokens answer `ERROR`, as an unknown command does. Which keys
//! exist (`cluster`) is the executor's business (`crate::exec::config_cmd`).

use bytes::BytesMut;

use super::super::line::{consume_err, request, take_range, Tokens};
use crate::protocol::command::Command;
use crate::protocol::reply;
use crate::protocol::text::Parsed;

/// `config get <key>` → [`Command::ConfigGet`]; anything else `ERROR`.
pub(super) fn config_get(buf: &mut BytesMut, frame_len: usize, t: &Tokens) -> Parsed {
    if t.n != 3 || t.get(buf, 1) != b"get" {
        return consume_err(buf, frame_len, reply::ERROR);
    }
    let (s, e) = t.t[2];
    let key = take_range(buf, frame_len, s, e);
    request(Command::ConfigGet { key }, false)
}

#[cfg(test)]
mod tests {
    use crate::protocol::ascii::AsciiParser;
    use crate::protocol::command::{Command, Request};
    use crate::protocol::reply;
    use crate::protocol::text::Parsed;
    use bytes::{Bytes, BytesMut};

    fn parse(input: &[u8]) -> (Parsed, usize) {
        let mut buf = BytesMut::from(input);
        let p = AsciiParser::default().parse(&mut buf);
        (p, buf.len())
    }

    fn config_get(key: &'static [u8]) -> Parsed {
        Parsed::Request(Request {
            cmd: Command::ConfigGet {
                key: Bytes::from_static(key),
            },
            noreply: false,
        })
    }

    #[test]
    fn config_get_cluster_is_a_request() {
        assert_eq!(
            parse(b"config get cluster\r\n"),
            (config_get(b"cluster"), 0)
        );
        // A bare \n and extra spaces, as every classic command allows.
        assert_eq!(
            parse(b"config  get   cluster\n"),
            (config_get(b"cluster"), 0)
        );
    }

    #[test]
    fn other_keys_are_left_to_the_executor() {
        assert_eq!(parse(b"config get foo\r\n"), (config_get(b"foo"), 0));
    }

    #[test]
    fn only_the_exact_get_form_is_a_request() {
        for line in [
            &b"config\r\n"[..],
            b"config get\r\n",
            b"config set cluster 0 5\r\n",
            b"config get cluster extra\r\n",
            b"config get cluster noreply\r\n",
            b"config GET cluster\r\n",
        ] {
            assert_eq!(parse(line), (Parsed::Error(reply::ERROR), 0), "{line:?}");
        }
    }

    #[test]
    fn the_next_request_follows() {
        let mut buf = BytesMut::from(&b"config get cluster\r\nversion\r\n"[..]);
        let mut p = AsciiParser::default();
        assert_eq!(p.parse(&mut buf), config_get(b"cluster"));
        assert_eq!(
            p.parse(&mut buf),
            Parsed::Request(Request {
                cmd: Command::Version,
                noreply: false
            })
        );
        assert!(buf.is_empty());
    }
}
