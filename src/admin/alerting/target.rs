//! Where alert webhooks and Slack URLs may point.
//!
//! A credential with the API capability chooses the URL the server POSTs
//! to, so without a check it could make the server reach what only the
//! server can reach: its loopback services, the private network, a cloud
//! metadata endpoint (169.254.169.254). Unless the operator passes
//! `--alert-allow-private`, a URL whose host is, or resolves to, any
//! address that is not public unicast is refused:
//! - when the delivery config is created ([`check_url`]: a 400 naming the
//!   address), and
//! - when an alert is sent ([`GuardedResolver`]): the host is resolved once,
//!   every address is checked, and ureq connects only to the addresses
//!   checked, so a DNS answer that changes between the check and the
//!   connection (rebinding) cannot slip a private address in. A URL
//!   accepted at creation whose host later resolves to a private address is
//!   refused here.
//!
//! Both parse the URL with `http::Uri`, the parser ureq itself uses, so the
//! host checked is the host connected to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// How long the check at configuration time waits for DNS.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Why `ip` is not a public unicast address, or None when it is one.
pub(crate) fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "unspecified (0.0.0.0/8)",
        (10, _, _) => "private (10.0.0.0/8)",
        (100, 64..=127, _) => "shared address space (100.64.0.0/10)",
        (127, _, _) => "loopback (127.0.0.0/8)",
        (169, 254, _) => "link-local (169.254.0.0/16, cloud metadata)",
        (172, 16..=31, _) => "private (172.16.0.0/12)",
        (192, 0, 0) => "IETF protocol assignments (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation (TEST-NET)",
        (192, 168, _) => "private (192.168.0.0/16)",
        (198, 18..=19, _) => "benchmarking (198.18.0.0/15)",
        (224..=239, _, _) => "multicast (224.0.0.0/4)",
        (240..=255, _, _) => "reserved or broadcast (240.0.0.0/4)",
        _ => return None,
    })
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    // Forms that carry an IPv4 address: judged by that address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return non_public_v4(v4);
    }
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64 (64:ff9b::/96): the gateway connects to the embedded address.
        return non_public_v4(embedded(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        // 6to4 (2002::/16): the relay reaches the embedded address.
        return non_public_v4(embedded(s[1], s[2]));
    }
    Some(match s[0] {
        _ if ip.is_unspecified() => "unspecified (::)",
        _ if ip.is_loopback() => "loopback (::1)",
        // ::/96, the deprecated IPv4-compatible form, and the rest of ::/8.
        0 => "reserved (::/8)",
        0x0100 if s[1..4] == [0, 0, 0] => "discard-only (100::/64)",
        0x2001 if s[1] == 0x0db8 => "documentation (2001:db8::/32)",
        x if x & 0xfe00 == 0xfc00 => "unique local (fc00::/7)",
        x if x & 0xffc0 == 0xfe80 => "link-local (fe80::/10)",
        x if x & 0xffc0 == 0xfec0 => "site-local (fec0::/10)",
        x if x & 0xff00 == 0xff00 => "multicast (ff00::/8)",
        _ => return None,
    })
}

/// The first of `addrs` that may not be reached, with why.
fn first_refused(addrs: impl IntoIterator<Item = SocketAddr>) -> Option<(IpAddr, &'static str)> {
    addrs
        .into_iter()
        .find_map(|a| non_public(a.ip()).map(|why| (a.ip(), why)))
}

fn refusal(url_host: &str, ip: IpAddr, why: &str) -> String {
    let what = if url_host.parse() == Ok(ip) {
        format!("alert URL host {url_host} is a {why} address")
    } else {
        format!("alert URL host {url_host} resolves to {ip}, a {why} address")
    };
    format!(
        "{what}; alerts are only sent to public addresses unless the server runs with \
         --alert-allow-private"
    )
}

/// The host (brackets removed) and port of an http(s) URL.
fn host_port(url: &str) -> Result<(String, u16), String> {
    let bad = || format!("alert URL {url:?} is not a valid http:// or https:// URL");
    let uri: Uri = url.parse().map_err(|_| bad())?;
    let port = match (uri.scheme_str(), uri.port_u16()) {
        (_, Some(port)) => port,
        (Some(s), None) if s.eq_ignore_ascii_case("https") => 443,
        (Some(s), None) if s.eq_ignore_ascii_case("http") => 80,
        _ => return Err(bad()),
    };
    let host = uri.host().ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

/// What [`check_url`] decides without DNS: Err(why) for an address
/// literal that is not public, Ok(None) when nothing is left to check,
/// Ok(Some((host, port))) when the host name must be resolved.
pub(crate) fn check_url_literal(
    url: &str,
    allow_private: bool,
) -> Result<Option<(String, u16)>, String> {
    if allow_private {
        return Ok(None);
    }
    // A URL this cannot parse is the store's to refuse, with its own
    // message; ureq could not send to it either.
    let Ok((host, port)) = host_port(url) else {
        return Ok(None);
    };
    match host.parse::<IpAddr>() {
        Ok(ip) => match non_public(ip) {
            Some(why) => Err(refusal(&host, ip, why)),
            None => Ok(None),
        },
        Err(_) => Ok(Some((host, port))),
    }
}

/// The check when a Slack or webhook delivery config is created: Err(why)
/// when `url`'s host is, or now resolves to, a non-public address (unless
/// `allow_private`). A host that does not resolve now is accepted: DNS
/// may be down or the host not yet published, and every send checks again.
pub(crate) async fn check_url(url: &str, allow_private: bool) -> Result<(), String> {
    let Some((host, port)) = check_url_literal(url, allow_private)? else {
        return Ok(());
    };
    let lookup = tokio::net::lookup_host((host.as_str(), port));
    let resolved = tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await;
    match resolved {
        Ok(Ok(addrs)) => match first_refused(addrs) {
            Some((ip, why)) => Err(refusal(&host, ip, why)),
            None => Ok(()),
        },
        Ok(Err(e)) => {
            tracing::warn!("alert URL host {host}: {e}; checked again when an alert is sent");
            Ok(())
        }
        Err(_) => {
            tracing::warn!("alert URL host {host}: DNS timed out; checked again when sending");
            Ok(())
        }
    }
}

/// ureq's resolver for alert deliveries: resolves as ureq would, then
/// refuses the request if any address is not public (unless
/// `allow_private`). ureq connects only to the addresses returned here.
#[derive(Debug)]
pub(crate) struct GuardedResolver {
    pub(crate) allow_private: bool,
}

impl Resolver for GuardedResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let addrs = DefaultResolver::default().resolve(uri, config, timeout)?;
        if self.allow_private {
            return Ok(addrs);
        }
        match first_refused(addrs.iter().copied()) {
            Some((ip, why)) => Err(ureq::Error::Io(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                refusal(uri.host().unwrap_or("?"), ip, why),
            ))),
            None => Ok(addrs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(ip: &str) -> bool {
        non_public(ip.parse().unwrap()).is_some()
    }

    #[test]
    fn non_public_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "127.8.9.10",
            "0.0.0.0",
            "0.1.2.3",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.254",
            "169.254.169.254",
            "169.254.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "240.0.0.1",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "2001:db8::1",
        ] {
            assert!(refused(ip), "{ip} should be refused");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.1.1",
            "192.169.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(!refused(ip), "{ip} should be allowed");
        }
    }

    #[test]
    fn hosts_and_ports_of_urls() {
        let hp = |u: &str| host_port(u);
        assert_eq!(hp("http://127.0.0.1:9/x"), Ok(("127.0.0.1".into(), 9)));
        assert_eq!(
            hp("https://hooks.example.com/a"),
            Ok(("hooks.example.com".into(), 443))
        );
        assert_eq!(hp("HTTP://h/a"), Ok(("h".into(), 80)));
        assert_eq!(hp("http://[::1]:8080/"), Ok(("::1".into(), 8080)));
        assert_eq!(hp("http://user:pw@10.0.0.1/"), Ok(("10.0.0.1".into(), 80)));
        assert!(hp("ftp://h/").is_err());
        assert!(hp("not a url").is_err());
    }

    fn check(url: &str, allow: bool) -> Result<(), String> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(check_url(url, allow))
    }

    #[test]
    fn configuration_check() {
        assert!(check("http://127.0.0.1:9/hook", false).is_err());
        assert!(check("http://[::1]:9/hook", false).is_err());
        assert!(check("http://169.254.169.254/latest/meta-data", false).is_err());
        assert!(check("http://user@10.0.0.1/", false).is_err());
        // localhost resolves through /etc/hosts, without DNS.
        assert!(check("http://localhost:9/hook", false).is_err());
        assert!(check("http://127.0.0.1:9/hook", true).is_ok());
        assert!(check("https://1.1.1.1/hook", false).is_ok());
        let e = check("http://127.0.0.1:9/hook", false).unwrap_err();
        assert!(e.contains("--alert-allow-private"), "{e}");
    }
}
