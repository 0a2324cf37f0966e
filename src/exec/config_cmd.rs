//! `config get <key>`: ElastiCache's cluster auto-discovery, in both wires.
//! The one configuration is `cluster`, the node list of
//! [`crate::topology::view`]:
//!
//! ```text
//! <version>\n<host>|<ip>|<port> <host>|<ip>|<port> ...\n
//! ```
//!
//! ASCII wraps it as a one-value get reply under the name `CONFIG` (flags
//! 0, `<bytes>` counting exactly those two lines), binary (opcode 0x60) as
//! a Get hit (4-byte flags extras, the text as the value). Answered on the
//! core that received it: the view is process-wide. An unknown key is
//! `ERROR` in ASCII (as an unknown command) and KEY_ENOENT in binary.

use crate::protocol::ascii::encode;
use crate::protocol::binary::{self as bin, BinRequest, Status};
use crate::protocol::reply;
use crate::topology::{self, ClusterView};
use bytes::{BufMut, BytesMut};

/// The auto-discovery configuration's name.
pub const CLUSTER: &[u8] = b"cluster";

/// The flags the configuration is reported with (ElastiCache sends 0).
const FLAGS: u32 = 0;

/// `<version>\n<host>|<ip>|<port> …\n`: nodes in the view's order, one
/// space between them; no nodes gives an empty second line.
pub fn cluster_text(view: &ClusterView) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + view.nodes.len() * 48);
    out.extend_from_slice(itoa::Buffer::new().format(view.version).as_bytes());
    out.push(b'\n');
    for (i, n) in view.nodes.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(n.host.as_bytes());
        out.push(b'|');
        out.extend_from_slice(n.ip.as_bytes());
        out.push(b'|');
        out.extend_from_slice(itoa::Buffer::new().format(n.port).as_bytes());
    }
    out.push(b'\n');
    out
}

/// ASCII `config get <key>` against the current view.
pub fn ascii(key: &[u8], out: &mut BytesMut) {
    ascii_with(&topology::view(), key, out);
}

/// ASCII `config get <key>` against `view`.
pub fn ascii_with(view: &ClusterView, key: &[u8], out: &mut BytesMut) {
    if key == CLUSTER {
        encode::config(out, CLUSTER, FLAGS, &cluster_text(view));
    } else {
        out.put_slice(reply::ERROR);
    }
}

/// Binary `config get` (opcode 0x60) against the current view.
pub fn binary(req: &BinRequest, out: &mut BytesMut) {
    binary_with(&topology::view(), req, out);
}

/// Binary `config get` against `view`.
pub fn binary_with(view: &ClusterView, req: &BinRequest, out: &mut BytesMut) {
    if &req.key[..] == CLUSTER {
        bin::encode::config(out, req, FLAGS, &cluster_text(view));
    } else {
        bin::encode::error(out, req, Status::KeyNotFound);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::binary::{opcode, BinCommand};
    use crate::topology::NodeAddr;
    use bytes::Bytes;

    fn node(host: &str, ip: &str, port: u16) -> NodeAddr {
        NodeAddr {
            host: host.into(),
            ip: ip.into(),
            port,
        }
    }

    fn three() -> ClusterView {
        ClusterView {
            version: 12,
            nodes: vec![
                node("a.example", "10.0.0.1", 11211),
                node("b.example", "10.0.0.2", 11211),
                node("10.0.0.3", "10.0.0.3", 11212),
            ],
        }
    }

    fn ascii_reply(view: &ClusterView, key: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        ascii_with(view, key, &mut out);
        out.to_vec()
    }

    fn bin_req(key: &'static [u8]) -> BinRequest {
        BinRequest {
            opcode: opcode::CONFIG_GET,
            quiet: false,
            opaque: 0xa1b2c3d4,
            cas: 0,
            key: Bytes::from_static(key),
            value: Bytes::new(),
            cmd: BinCommand::ConfigGet,
        }
    }

    #[test]
    fn one_node() {
        let v = ClusterView::single(node("127.0.0.1", "127.0.0.1", 11211));
        let text = b"1\n127.0.0.1|127.0.0.1|11211\n";
        assert_eq!(cluster_text(&v), text);
        // 2 + 25 + 1 bytes between the first \r\n and \r\nEND.
        assert_eq!(text.len(), 28);
        assert_eq!(
            ascii_reply(&v, b"cluster"),
            b"CONFIG cluster 0 28\r\n1\n127.0.0.1|127.0.0.1|11211\n\r\nEND\r\n"
        );
    }

    #[test]
    fn three_nodes_one_space_apart() {
        let text =
            b"12\na.example|10.0.0.1|11211 b.example|10.0.0.2|11211 10.0.0.3|10.0.0.3|11212\n";
        assert_eq!(cluster_text(&three()), text);
        assert_eq!(text.len(), 77);
        let mut want = b"CONFIG cluster 0 77\r\n".to_vec();
        want.extend_from_slice(text);
        want.extend_from_slice(b"\r\nEND\r\n");
        assert_eq!(ascii_reply(&three(), b"cluster"), want);
    }

    #[test]
    fn an_empty_view_answers_what_it_holds() {
        assert_eq!(
            ascii_reply(&ClusterView::default(), b"cluster"),
            b"CONFIG cluster 0 3\r\n0\n\n\r\nEND\r\n"
        );
    }

    #[test]
    fn an_unknown_key_is_error() {
        assert_eq!(ascii_reply(&three(), b"foo"), b"ERROR\r\n");
        assert_eq!(ascii_reply(&three(), b"Cluster"), b"ERROR\r\n");
    }

    #[test]
    fn binary_answer_is_flags_then_text() {
        let mut out = BytesMut::new();
        binary_with(&three(), &bin_req(b"cluster"), &mut out);
        let text = cluster_text(&three());
        let h = bin::Header::decode(&out).unwrap();
        assert_eq!(
            (h.magic, h.opcode, h.status, h.extlen, h.keylen, h.opaque, h.cas),
            (0x81, 0x60, 0, 4, 0, 0xa1b2c3d4, 0)
        );
        assert_eq!(h.bodylen as usize, 4 + text.len());
        assert_eq!(&out[24..28], &[0, 0, 0, 0]);
        assert_eq!(&out[28..], &text[..]);
    }

    #[test]
    fn binary_unknown_key_is_key_not_found() {
        let mut out = BytesMut::new();
        binary_with(&three(), &bin_req(b"nodes"), &mut out);
        let h = bin::Header::decode(&out).unwrap();
        assert_eq!((h.opcode, h.status, h.extlen, h.keylen), (0x60, 1, 0, 0));
        assert_eq!(&out[24..], b"Not found");
    }
}
