//! Credential and token generation from the OS CSPRNG (`getrandom`).
//!
//! Shapes follow MemCachier's (reference 003, "ASCII protocol"): a short hex
//! username such as `15F38E` and a 32-hex-digit password such as
//! `52353F9F1C4017CC16FD348B982ED47D` (128 bits). The password carries all of
//! the secrecy; the username is an identifier, 24 bits wide, kept unique by
//! the store.

/// Length of a generated username, in hex digits.
pub(crate) const USERNAME_LEN: usize = 6;
/// Length of a generated password, in hex digits (128 bits).
pub(crate) const PASSWORD_LEN: usize = 32;
/// Length of the operator token, in hex digits (256 bits).
pub(crate) const TOKEN_LEN: usize = 64;

fn random_hex(digits: usize, upper: bool) -> std::io::Result<String> {
    let mut bytes = vec![0u8; digits.div_ceil(2)];
    getrandom::getrandom(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    let table: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut s = String::with_capacity(digits);
    for b in bytes {
        s.push(table[usize::from(b >> 4)] as char);
        s.push(table[usize::from(b & 0xf)] as char);
    }
    s.truncate(digits);
    Ok(s)
}

/// A fresh username candidate (the store retries on collision).
pub(crate) fn username() -> std::io::Result<String> {
    random_hex(USERNAME_LEN, true)
}

/// A fresh 128-bit password.
pub(crate) fn password() -> std::io::Result<String> {
    random_hex(PASSWORD_LEN, true)
}

/// A fresh 256-bit operator token.
pub(crate) fn operator_token() -> std::io::Result<String> {
    random_hex(TOKEN_LEN, false)
}

/// Could `name` be one of our generated usernames (6 hex digits, any case)?
/// Used by the ASCII auth path to choose a failure reply without revealing
/// whether a username exists.
pub fn is_username_shaped(name: &[u8]) -> bool {
    name.len() == USERNAME_LEN && name.iter().all(u8::is_ascii_hexdigit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let u = username().unwrap();
        assert_eq!(u.len(), USERNAME_LEN);
        assert!(u
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()));
        assert!(is_username_shaped(u.as_bytes()));
        let p = password().unwrap();
        assert_eq!(p.len(), PASSWORD_LEN);
        assert!(p.bytes().all(|b| b.is_ascii_hexdigit()));
        let t = operator_token().unwrap();
        assert_eq!(t.len(), TOKEN_LEN);
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
    }

    #[test]
    fn distinct() {
        let a: std::collections::HashSet<String> = (0..64).map(|_| password().unwrap()).collect();
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn username_shape_check() {
        assert!(is_username_shaped(b"15F38e"));
        assert!(!is_username_shaped(b"15F38"));
        assert!(!is_username_shaped(b"15F38G"));
        assert!(!is_username_shaped(b"anykey"));
    }
}
