//! SCRAM-SHA-256 (RFC 5802, RFC 7677) on the server side, checked against a
//! stored verifier rather than a password.
//!
//! A verifier is what PostgreSQL keeps in `pg_authid.rolpassword`:
//! `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`. It lets the
//! server check a client's proof and prove itself in return, but it cannot
//! be used to log in: that needs the ClientKey, which only the password
//! gives. So the users file can hold verifiers (`fusegate hash-password`, or
//! PostgreSQL's own) instead of passwords.
//!
//! pgwire's SCRAM needs the salted password, which does log a user in; this
//! exchange is ours so that it does not.

use std::fmt;
use std::num::NonZeroU32;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac, pbkdf2};

/// The iteration count of verifiers fusegate makes (PostgreSQL's default).
pub const ITERATIONS: u32 = 4096;
const KEY_LEN: usize = 32;
const SALT_LEN: usize = 16;
const PREFIX: &str = "SCRAM-SHA-256$";

/// A user's SCRAM-SHA-256 verifier.
#[derive(Clone, PartialEq, Eq)]
pub struct Verifier {
    iterations: u32,
    salt: Vec<u8>,
    stored_key: [u8; KEY_LEN],
    server_key: [u8; KEY_LEN],
}

impl fmt::Debug for Verifier {
    // Keys never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Verifier(..)")
    }
}

impl Verifier {
    /// The verifier of `password` with a fresh random salt.
    pub fn from_password(password: &str) -> Verifier {
        Verifier::derive(password, &random_bytes(SALT_LEN), ITERATIONS)
    }

    fn derive(password: &str, salt: &[u8], iterations: u32) -> Verifier {
        let salted = salted_password(password, salt, iterations);
        let client_key = hmac_sha256(&salted, b"Client Key");
        Verifier {
            iterations,
            salt: salt.to_vec(),
            stored_key: sha256(&client_key),
            server_key: hmac_sha256(&salted, b"Server Key"),
        }
    }

    /// Parses PostgreSQL's text form; None when `text` is not a verifier.
    pub fn parse(text: &str) -> Option<Verifier> {
        let rest = text.strip_prefix(PREFIX)?;
        let (params, keys) = rest.split_once('$')?;
        let (iterations, salt) = params.split_once(':')?;
        let (stored, server) = keys.split_once(':')?;
        let iterations: u32 = iterations.parse().ok().filter(|&i| i > 0)?;
        let salt = STANDARD.decode(salt).ok().filter(|s| !s.is_empty())?;
        Some(Verifier {
            iterations,
            salt,
            stored_key: STANDARD.decode(stored).ok()?.try_into().ok()?,
            server_key: STANDARD.decode(server).ok()?.try_into().ok()?,
        })
    }

    /// Whether a password sent in cleartext is the one this verifier was made
    /// from (the `password` method, against a hashed credential).
    pub fn matches_password(&self, password: &str) -> bool {
        let other = Verifier::derive(password, &self.salt, self.iterations);
        constant_time_eq(&other.stored_key, &self.stored_key)
    }

    /// A verifier no password matches, with a salt that depends only on the
    /// user name and `secret`: an unknown user's exchange looks like a known
    /// one's, the same on every try, as PostgreSQL's mock verifiers do.
    pub fn mock(user: &str, secret: &[u8]) -> Verifier {
        let salt = hmac_sha256(secret, user.as_bytes());
        Verifier {
            iterations: ITERATIONS,
            salt: salt[..SALT_LEN].to_vec(),
            stored_key: random_bytes(KEY_LEN).try_into().unwrap_or([0; KEY_LEN]),
            server_key: [0; KEY_LEN],
        }
    }
}

impl fmt::Display for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}{}:{}${}:{}",
            self.iterations,
            STANDARD.encode(&self.salt),
            STANDARD.encode(self.stored_key),
            STANDARD.encode(self.server_key)
        )
    }
}

/// Why an exchange failed. Only logged at debug: the client is told no more
/// than that authentication failed.
#[derive(Debug, PartialEq, Eq)]
pub struct ScramError(pub &'static str);

/// `tls-server-end-point` channel binding data (RFC 5929): the hash of the
/// server's certificate, with its signature's hash (SHA-256 for MD5 and SHA-1).
pub fn certificate_hash(cert_pem: &[u8]) -> Result<Vec<u8>, String> {
    use x509_certificate::{CapturedX509Certificate, SignatureAlgorithm as Sig};
    let certs = CapturedX509Certificate::from_pem_multiple(cert_pem).map_err(|e| e.to_string())?;
    let cert = certs
        .first()
        .ok_or_else(|| "no certificate in the PEM".to_string())?;
    let algorithm = match cert.signature_algorithm() {
        Some(Sig::RsaSha384 | Sig::EcdsaSha384) => &digest::SHA384,
        Some(Sig::RsaSha512) => &digest::SHA512,
        Some(Sig::RsaSha1 | Sig::RsaSha256 | Sig::EcdsaSha256) => &digest::SHA256,
        other => return Err(format!("unsupported certificate signature {other:?}")),
    };
    Ok(digest::digest(algorithm, cert.constructed_data())
        .as_ref()
        .to_vec())
}

/// The server's side of one exchange, after the client's first message.
#[derive(Debug)]
pub struct Exchange {
    verifier: Verifier,
    /// The GS2 header the client sent, which its final message must echo.
    gs2_header: String,
    /// Certificate hash to bind to, when the client chose channel binding.
    binding: Option<Vec<u8>>,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

impl Exchange {
    /// Answers the client-first message. `plus` says the client chose
    /// SCRAM-SHA-256-PLUS; `cert_hash` is the binding data when the
    /// connection is TLS and the server offered PLUS.
    pub fn start(
        verifier: Verifier,
        client_first: &[u8],
        plus: bool,
        cert_hash: Option<&[u8]>,
    ) -> Result<(Exchange, String), ScramError> {
        let text =
            std::str::from_utf8(client_first).map_err(|_| ScramError("client-first not UTF-8"))?;
        // gs2-header = cbind-flag "," [authzid] ","
        let mut parts = text.splitn(3, ',');
        let flag = parts.next().unwrap_or_default();
        let authzid = parts.next().ok_or(ScramError("client-first malformed"))?;
        let bare = parts.next().ok_or(ScramError("client-first malformed"))?;
        if !authzid.is_empty() {
            return Err(ScramError("authorization identities are not supported"));
        }
        let binding = match (flag, plus) {
            ("p=tls-server-end-point", true) => Some(
                cert_hash
                    .ok_or(ScramError("channel binding without TLS"))?
                    .to_vec(),
            ),
            (f, true) if f.starts_with("p=") => {
                return Err(ScramError("unsupported channel binding type"));
            }
            ("n", false) => None,
            // The client could bind but thinks we cannot: a downgrade, if we can.
            ("y", false) if cert_hash.is_none() => None,
            ("y", false) => return Err(ScramError("channel binding downgraded")),
            _ => {
                return Err(ScramError(
                    "channel binding flag does not match the mechanism",
                ));
            }
        };
        // The user name in the message is ignored: the startup packet's counts.
        let client_nonce = bare
            .split(',')
            .find_map(|a| a.strip_prefix("r="))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_graphic() && b != b','))
            .ok_or(ScramError("client-first without a nonce"))?;
        if bare.starts_with("m=") {
            return Err(ScramError("mandatory extensions are not supported"));
        }
        let nonce = format!("{client_nonce}{}", STANDARD.encode(random_bytes(18)));
        let server_first = format!(
            "r={nonce},s={},i={}",
            STANDARD.encode(&verifier.salt),
            verifier.iterations
        );
        let exchange = Exchange {
            verifier,
            gs2_header: format!("{flag},{authzid},"),
            binding,
            client_first_bare: bare.to_string(),
            server_first: server_first.clone(),
            nonce,
        };
        Ok((exchange, server_first))
    }

    /// Checks the client-final message's proof; on success, the
    /// server-final message proving the server knows the verifier.
    pub fn finish(&self, client_final: &[u8]) -> Result<String, ScramError> {
        let text =
            std::str::from_utf8(client_final).map_err(|_| ScramError("client-final not UTF-8"))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or(ScramError("client-final without a proof"))?;
        let mut attrs = without_proof.split(',');
        let binding = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or(ScramError("client-final without channel binding"))?;
        let nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(ScramError("client-final without a nonce"))?;
        let mut expected = self.gs2_header.as_bytes().to_vec();
        if let Some(hash) = &self.binding {
            expected.extend_from_slice(hash);
        }
        if STANDARD.decode(binding).ok() != Some(expected) {
            return Err(ScramError("channel binding mismatch"));
        }
        if nonce != self.nonce {
            return Err(ScramError("nonce mismatch"));
        }
        let proof: [u8; KEY_LEN] = STANDARD
            .decode(proof)
            .ok()
            .and_then(|p| p.try_into().ok())
            .ok_or(ScramError("malformed proof"))?;
        let auth_message = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        let signature = hmac_sha256(&self.verifier.stored_key, auth_message.as_bytes());
        let mut client_key = [0u8; KEY_LEN];
        for (k, (p, s)) in client_key.iter_mut().zip(proof.iter().zip(signature)) {
            *k = p ^ s;
        }
        if !constant_time_eq(&sha256(&client_key), &self.verifier.stored_key) {
            return Err(ScramError("wrong password"));
        }
        let server_signature = hmac_sha256(&self.verifier.server_key, auth_message.as_bytes());
        Ok(format!("v={}", STANDARD.encode(server_signature)))
    }
}

/// SaltedPassword := Hi(SASLprep(password), salt, i). Like PostgreSQL, a
/// password SASLprep refuses is used as it is.
fn salted_password(password: &str, salt: &[u8], iterations: u32) -> [u8; KEY_LEN] {
    let prepared = stringprep::saslprep(password).unwrap_or(std::borrow::Cow::Borrowed(password));
    let mut out = [0u8; KEY_LEN];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN),
        salt,
        prepared.as_bytes(),
        &mut out,
    );
    out
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; KEY_LEN] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    let mut out = [0u8; KEY_LEN];
    out.copy_from_slice(tag.as_ref());
    out
}

fn sha256(data: &[u8]) -> [u8; KEY_LEN] {
    let mut out = [0u8; KEY_LEN];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Bytes from the system's secure random source.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    // SystemRandom only fails when the OS has no entropy source at all.
    if SystemRandom::new().fill(&mut out).is_err() {
        out.iter_mut()
            .zip(uuid::Uuid::new_v4().as_bytes().iter().cycle())
            .for_each(|(o, u)| *o = *u);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client's side, as RFC 5802 describes it, to drive the server's.
    fn client_final(
        password: &str,
        client_first_bare: &str,
        server_first: &str,
        gs2: &[u8],
    ) -> String {
        let attr = |name: &str| {
            server_first
                .split(',')
                .find_map(|a| a.strip_prefix(name))
                .unwrap()
                .to_string()
        };
        let salt = STANDARD.decode(attr("s=")).unwrap();
        let salted = salted_password(password, &salt, attr("i=").parse().unwrap());
        let client_key = hmac_sha256(&salted, b"Client Key");
        let without_proof = format!("c={},r={}", STANDARD.encode(gs2), attr("r="));
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = hmac_sha256(&sha256(&client_key), auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature)
            .map(|(k, s)| k ^ s)
            .collect();
        format!("{without_proof},p={}", STANDARD.encode(proof))
    }

    #[test]
    fn postgres_verifiers_are_read_and_checked() {
        // Made by PostgreSQL 15.18: SET password_encryption = 'scram-sha-256';
        // CREATE ROLE r PASSWORD 'pencil'; SELECT rolpassword FROM pg_authid.
        let pg = "SCRAM-SHA-256$4096:7yGhFlu2oeUjNSzkfj/smg==$r57ZgN1Z2uEnS8IdxR4jYfqPdg28lrMx2UuwHlMZKtY=:nL5+4kvwBIU2KOpez43f1Mt3zyTV4Nb9F2hvSnBsTy8=";
        let v = Verifier::parse(pg).expect("a PostgreSQL verifier parses");
        assert_eq!(v.to_string(), pg);
        // Our derivation is PostgreSQL's: the same salt gives the same keys.
        assert!(v.matches_password("pencil"));
        assert!(!v.matches_password("wrong"));
        assert!(Verifier::parse("SCRAM-SHA-256$0:c2FsdA==$AA==:AA==").is_none());
        assert!(Verifier::parse("md5abc").is_none());
        let made = Verifier::from_password("pencil");
        assert!(made.matches_password("pencil") && !made.matches_password("Pencil"));
        assert_eq!(Verifier::parse(&made.to_string()), Some(made.clone()));
        assert_eq!(format!("{made:?}"), "Verifier(..)");
    }

    #[test]
    fn the_exchange_accepts_the_password_and_nothing_else() {
        let verifier = Verifier::from_password("pencil");
        let first = b"n,,n=,r=rOprNGfwEbeRWgbNEkqO";
        for (password, ok) in [("pencil", true), ("pencil ", false), ("", false)] {
            let (exchange, server_first) =
                Exchange::start(verifier.clone(), first, false, None).unwrap();
            assert!(server_first.starts_with("r=rOprNGfwEbeRWgbNEkqO"));
            let fin = client_final(password, "n=,r=rOprNGfwEbeRWgbNEkqO", &server_first, b"n,,");
            let answer = exchange.finish(fin.as_bytes());
            assert_eq!(answer.is_ok(), ok, "{password:?}: {answer:?}");
        }
        // A replayed proof fails against a new exchange's nonce.
        let (a, sf) = Exchange::start(verifier.clone(), first, false, None).unwrap();
        let fin = client_final("pencil", "n=,r=rOprNGfwEbeRWgbNEkqO", &sf, b"n,,");
        assert!(a.finish(fin.as_bytes()).is_ok());
        let (b, _) = Exchange::start(verifier.clone(), first, false, None).unwrap();
        assert_eq!(b.finish(fin.as_bytes()), Err(ScramError("nonce mismatch")));
    }

    #[test]
    fn channel_binding_is_enforced() {
        let verifier = Verifier::from_password("pencil");
        let hash = [7u8; 32];
        let first = b"p=tls-server-end-point,,n=,r=abc";
        let mut bound = b"p=tls-server-end-point,,".to_vec();
        bound.extend_from_slice(&hash);
        let (exchange, sf) = Exchange::start(verifier.clone(), first, true, Some(&hash)).unwrap();
        let fin = client_final("pencil", "n=,r=abc", &sf, &bound);
        assert!(exchange.finish(fin.as_bytes()).is_ok());

        // Binding data of another certificate fails.
        let (other, sf) = Exchange::start(verifier.clone(), first, true, Some(&[8u8; 32])).unwrap();
        let fin = client_final("pencil", "n=,r=abc", &sf, &bound);
        assert_eq!(
            other.finish(fin.as_bytes()),
            Err(ScramError("channel binding mismatch"))
        );
        // A client that could bind, told over TLS that we cannot: a downgrade.
        assert!(Exchange::start(verifier.clone(), b"y,,n=,r=abc", false, Some(&hash)).is_err());
        assert!(Exchange::start(verifier.clone(), b"y,,n=,r=abc", false, None).is_ok());
        assert!(Exchange::start(verifier.clone(), b"n,,n=,r=abc", true, Some(&hash)).is_err());
        assert!(Exchange::start(verifier, b"n,,n=,r=", false, None).is_err());
    }

    #[test]
    fn unknown_users_look_like_known_ones() {
        let a = Verifier::mock("nobody", b"secret");
        let b = Verifier::mock("nobody", b"secret");
        assert_eq!(a.salt, b.salt);
        assert_ne!(a.salt, Verifier::mock("other", b"secret").salt);
        assert!(!a.matches_password(""));
    }
}
