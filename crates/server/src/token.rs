//! Login tokens, sans-IO: minted and checked with the server secret, time passed in.
//!
//! Format (ASCII, at most [`MAX_TOKEN_BYTES`]):
//! `base64url(user) "." expiry "." base64url(mac)` where `expiry` is the expiry time in
//! seconds since the Unix epoch (decimal, no leading zeros) and `mac` is
//! HMAC-SHA256(secret, `base64url(user) "." expiry`), base64url without padding
//! throughout. The user id travels inside the token, so a token is good for one user only;
//! the comparison of the MAC is constant-time ([`hmac::Mac::verify_slice`]).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;
use tincan_signal::protocol::{MAX_TOKEN_BYTES, UserId};

type HmacSha256 = Hmac<Sha256>;

/// The fewest bytes a server secret may have.
pub const MIN_SECRET_BYTES: usize = 16;

/// Why a token was refused, or a secret could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token does not have the `user.expiry.mac` shape, or a part does not decode.
    #[error("malformed token: {reason}")]
    Malformed {
        /// What was wrong.
        reason: &'static str,
    },
    /// The MAC does not match: another secret minted it, or it was altered.
    #[error("token signature does not match")]
    BadSignature,
    /// The token's expiry has passed.
    #[error("token expired at {expiry} (now {now})")]
    Expired {
        /// The token's expiry, seconds since the Unix epoch.
        expiry: u64,
        /// The time of the check, seconds since the Unix epoch.
        now: u64,
    },
    /// The secret is shorter than [`MIN_SECRET_BYTES`].
    #[error("server secret of {len} bytes is shorter than {min}")]
    WeakSecret {
        /// Its length.
        len: usize,
        /// The least allowed.
        min: usize,
    },
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    /// The user the token logs in.
    pub user: UserId,
    /// Expiry, seconds since the Unix epoch.
    pub expiry: u64,
}

/// Mints and verifies tokens with one server secret.
///
/// ```
/// use tincan_server::token::TokenKey;
/// use tincan_signal::protocol::UserId;
///
/// let key = TokenKey::new(b"a server secret of 32 bytes.....".to_vec())?;
/// let bob = UserId::new("bob")?;
/// let token = key.mint(&bob, 1_000);
/// assert_eq!(key.verify(&token, 999)?.user, bob);
/// assert!(key.verify(&token, 1_000).is_err()); // expired
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct TokenKey {
    /// The HMAC keyed with the secret, cloned for each token.
    keyed: HmacSha256,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("TokenKey").finish_non_exhaustive()
    }
}

impl TokenKey {
    /// A key from the server secret (at least [`MIN_SECRET_BYTES`]).
    pub fn new(secret: Vec<u8>) -> Result<Self, TokenError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(TokenError::WeakSecret {
                len: secret.len(),
                min: MIN_SECRET_BYTES,
            });
        }
        // HMAC accepts keys of every length, so this error cannot happen; map it anyway.
        let keyed =
            <HmacSha256 as Mac>::new_from_slice(&secret).map_err(|_| TokenError::WeakSecret {
                len: secret.len(),
                min: MIN_SECRET_BYTES,
            })?;
        Ok(Self { keyed })
    }

    fn mac(&self) -> HmacSha256 {
        self.keyed.clone()
    }

    /// A token for `user` that expires at `expiry` (seconds since the Unix epoch).
    pub fn mint(&self, user: &UserId, expiry: u64) -> String {
        let payload = format!("{}.{expiry}", URL_SAFE_NO_PAD.encode(user.as_str()));
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{payload}.{tag}")
    }

    /// Checks a token at `now` (seconds since the Unix epoch): shape, signature, then
    /// expiry (a token is valid while `now < expiry`).
    pub fn verify(&self, token: &str, now: u64) -> Result<TokenClaims, TokenError> {
        let claims = parse_unverified(token)?;
        let Some((payload, tag)) = token.rsplit_once('.') else {
            return Err(TokenError::Malformed {
                reason: "no signature",
            });
        };
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Malformed {
                reason: "signature is not base64url",
            })?;
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        mac.verify_slice(&tag)
            .map_err(|_| TokenError::BadSignature)?;
        if now >= claims.expiry {
            return Err(TokenError::Expired {
                expiry: claims.expiry,
                now,
            });
        }
        Ok(claims)
    }
}

/// Reads a token's user and expiry without checking its signature (for logs and the
/// fuzzer; never for authentication).
pub fn parse_unverified(token: &str) -> Result<TokenClaims, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed {
            reason: "longer than 1024 bytes",
        });
    }
    let mut parts = token.split('.');
    let (Some(user), Some(expiry), Some(tag), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed {
            reason: "not three dot-separated parts",
        });
    };
    if tag.is_empty() {
        return Err(TokenError::Malformed {
            reason: "empty signature",
        });
    }
    let user = URL_SAFE_NO_PAD
        .decode(user)
        .map_err(|_| TokenError::Malformed {
            reason: "user is not base64url",
        })?;
    let user = String::from_utf8(user).map_err(|_| TokenError::Malformed {
        reason: "user is not UTF-8",
    })?;
    let user = UserId::new(user).map_err(|_| TokenError::Malformed {
        reason: "user is not a valid user id",
    })?;
    // Only canonical decimal: no sign, no leading zeros, so one expiry has one text.
    let canonical = !expiry.is_empty()
        && expiry.bytes().all(|b| b.is_ascii_digit())
        && (expiry == "0" || !expiry.starts_with('0'));
    let expiry = if canonical {
        expiry.parse::<u64>().ok()
    } else {
        None
    }
    .ok_or(TokenError::Malformed {
        reason: "expiry is not a decimal number",
    })?;
    Ok(TokenClaims { user, expiry })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> TokenKey {
        TokenKey::new(b"0123456789abcdef0123456789abcdef".to_vec()).unwrap()
    }

    fn user(name: &str) -> UserId {
        UserId::new(name).unwrap()
    }

    #[test]
    fn mints_and_verifies() {
        let token = key().mint(&user("alice"), 2_000_000_000);
        let claims = key().verify(&token, 1_999_999_999).unwrap();
        assert_eq!(claims.user, user("alice"));
        assert_eq!(claims.expiry, 2_000_000_000);
        assert_eq!(token.split('.').count(), 3);
    }

    #[test]
    fn refuses_expired_altered_and_foreign_tokens() {
        let token = key().mint(&user("alice"), 100);
        assert_eq!(
            key().verify(&token, 100),
            Err(TokenError::Expired {
                expiry: 100,
                now: 100
            })
        );
        let other = TokenKey::new(b"another secret, also long enough".to_vec()).unwrap();
        assert_eq!(other.verify(&token, 0), Err(TokenError::BadSignature));
        // Same signature, another user.
        let (_, rest) = token.split_once('.').unwrap();
        let forged = format!("{}.{rest}", URL_SAFE_NO_PAD.encode("mallory"));
        assert_eq!(key().verify(&forged, 0), Err(TokenError::BadSignature));
        // Same signature, a later expiry.
        let forged = token.replacen(".100.", ".1000.", 1);
        assert_eq!(key().verify(&forged, 0), Err(TokenError::BadSignature));
        for bad in [
            "", "a.b", "a.1.", "YQ.01.x", "YQ.-1.x", "YQ.1.x.y", "!!.1.x", "YQ.1.!!",
        ] {
            assert!(
                matches!(key().verify(bad, 0), Err(TokenError::Malformed { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            TokenKey::new(vec![1; 15]),
            Err(TokenError::WeakSecret { len: 15, min: 16 })
        ));
    }

    proptest! {
        #[test]
        fn round_trips_for_any_user_and_expiry(name in "[a-z0-9_.@-]{1,64}", expiry in 1u64..u64::MAX) {
            let token = key().mint(&user(&name), expiry);
            prop_assert!(token.len() <= MAX_TOKEN_BYTES);
            let claims = key().verify(&token, expiry - 1).unwrap();
            prop_assert_eq!(claims.user.as_str(), name.as_str());
            prop_assert!(key().verify(&token, expiry).is_err());
        }

        #[test]
        fn any_single_byte_change_is_refused(expiry in 10u64..1_000_000, at in 0usize..200, byte in any::<u8>()) {
            let token = key().mint(&user("carol"), expiry);
            let mut bytes = token.clone().into_bytes();
            let at = at % bytes.len();
            prop_assume!(bytes[at] != byte);
            bytes[at] = byte;
            if let Ok(altered) = String::from_utf8(bytes) {
                prop_assert!(key().verify(&altered, 0).is_err());
            }
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,200}") {
            let _ = key().verify(&text, 0);
        }
    }
}
