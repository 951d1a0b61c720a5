//! A small, tolerant PEM (RFC 7468) reader and writer.
//!
//! Tolerant because real files carry text around the blocks (`openssl pkcs12` writes "Bag
//! Attributes" lines, people paste comments), use CRLF line ends, and OpenSSL's traditional
//! encrypted keys put RFC 1421 headers (`Proc-Type`, `DEK-Info`) inside the block. Decoded block
//! contents may be private keys, so they live in wiped buffers.

use base64::Engine as _;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Most PEM blocks read from one input (a certificate chain plus a key is a handful).
const MAX_BLOCKS: usize = 64;

/// One `-----BEGIN LABEL-----` … `-----END LABEL-----` block.
pub(crate) struct Block {
    /// The label (`CERTIFICATE`, `PRIVATE KEY`, ...).
    pub label: String,
    /// RFC 1421 headers (`Proc-Type`, `DEK-Info`), in order.
    pub headers: Vec<(String, String)>,
    /// The decoded contents.
    pub der: Zeroizing<Vec<u8>>,
}

impl Block {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads every PEM block of `input`, in order. Text outside blocks is ignored.
pub(crate) fn parse(input: &[u8]) -> Result<Vec<Block>> {
    // Only the blocks must be ASCII; comments around them may be in any encoding.
    let lossy;
    let text = match std::str::from_utf8(input) {
        Ok(text) => text,
        Err(_) => {
            lossy = Zeroizing::new(String::from_utf8_lossy(input).into_owned());
            lossy.as_str()
        }
    };
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(label) = boundary(line, "BEGIN") else {
            continue;
        };
        if blocks.len() >= MAX_BLOCKS {
            return Err(Error::certificate(format!(
                "the PEM text holds more than {MAX_BLOCKS} blocks"
            )));
        }
        let mut headers = Vec::new();
        // Room for any RSA key up to 8192 bits up front: growing the buffer would free copies of
        // a private key unwiped. (Bounded per block: 64 blocks cost at most 1 MiB.)
        let mut body = Zeroizing::new(String::with_capacity(text.len().min(16 * 1024)));
        let mut in_headers = true;
        let mut closed = false;
        for line in lines.by_ref() {
            if let Some(end) = boundary(line, "END") {
                if end != label {
                    return Err(malformed(&label));
                }
                closed = true;
                break;
            }
            let line = line.trim();
            if in_headers {
                if let Some((k, v)) = line.split_once(':') {
                    headers.push((k.trim().to_owned(), v.trim().to_owned()));
                    continue;
                }
                if line.is_empty() {
                    continue;
                }
                in_headers = false;
            }
            body.push_str(line);
        }
        if !closed {
            return Err(Error::certificate(format!(
                "the PEM block '{label}' has no END line; the file is truncated"
            )));
        }
        let mut der = Zeroizing::new(Vec::with_capacity(body.len() / 4 * 3 + 3));
        base64::engine::general_purpose::STANDARD
            .decode_vec(body.as_bytes(), &mut der)
            .map_err(|_| malformed(&label))?;
        blocks.push(Block {
            label,
            headers,
            der,
        });
    }
    Ok(blocks)
}

fn malformed(label: &str) -> Error {
    Error::certificate(format!(
        "the PEM block '{label}' is malformed (bad base64 or mismatched END line)"
    ))
}

/// The label of a `-----BEGIN X-----` / `-----END X-----` line.
fn boundary(line: &str, kind: &str) -> Option<String> {
    let rest = line.trim().strip_prefix("-----")?.strip_prefix(kind)?;
    let label = rest.strip_prefix(' ')?.strip_suffix("-----")?;
    if label.len() > 64 || !label.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return None;
    }
    Some(label.to_owned())
}

/// Encodes `der` as one PEM block with 64-character lines. The text is wiped on drop, since it
/// may hold a private key.
pub(crate) fn encode(label: &str, der: &[u8]) -> Zeroizing<String> {
    let mut b64 = Zeroizing::new(String::with_capacity(der.len().div_ceil(3) * 4));
    base64::engine::general_purpose::STANDARD.encode_string(der, &mut b64);
    let mut out = Zeroizing::new(String::with_capacity(b64.len() + b64.len() / 64 + 80));
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    let mut rest: &str = &b64;
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_blocks_among_text_with_headers_and_crlf() {
        let text = b"Bag Attributes\r\n    localKeyID: 01 02\r\n-----BEGIN CERTIFICATE-----\r\nAAEC\r\nAw==\r\n-----END CERTIFICATE-----\r\nnoise\n-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00FF\n\nBAUG\n-----END RSA PRIVATE KEY-----\n";
        let blocks = parse(text).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].label, "CERTIFICATE");
        assert_eq!(&*blocks[0].der, &[0, 1, 2, 3]);
        assert_eq!(blocks[1].label, "RSA PRIVATE KEY");
        assert_eq!(blocks[1].header("dek-info"), Some("AES-256-CBC,00FF"));
        assert_eq!(&*blocks[1].der, &[4, 5, 6]);
    }

    #[test]
    fn refuses_truncated_and_mismatched_blocks() {
        assert!(parse(b"-----BEGIN CERTIFICATE-----\nAAEC\n").is_err());
        assert!(parse(b"-----BEGIN CERTIFICATE-----\nAAEC\n-----END PRIVATE KEY-----\n").is_err());
        assert!(parse(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n").is_err());
        assert!(parse(&[0xff, 0xfe]).unwrap().is_empty());
        let mut latin1 = b"caf\xe9\n".to_vec();
        latin1.extend_from_slice(b"-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n");
        assert_eq!(&*parse(&latin1).unwrap()[0].der, &[0, 1, 2]);
        assert!(parse(b"no blocks at all").unwrap().is_empty());
    }

    #[test]
    fn encode_round_trips_with_64_column_lines() {
        let der: Vec<u8> = (0..=255u8).collect();
        let text = encode("CERTIFICATE", &der);
        assert!(text.lines().all(|l| l.len() <= 64));
        let back = parse(text.as_bytes()).unwrap();
        assert_eq!(&*back[0].der, &der[..]);
    }
}
