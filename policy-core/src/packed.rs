//! The packed prefix table: a compact encoding of large registered-prefix tables.
//!
//! A policy with a million prefixes is some 60 MB of JSON, and every proxy-wasm VM
//! parses its own copy into memory that WebAssembly never gives back. The packed
//! table carries the same prefixes in about 6 bytes each (8 as base64), in the
//! policy's `prefix_table` field; `mapsctl pack` produces it from an ordinary policy,
//! and validation checks every record exactly as it checks a JSON prefix.
//!
//! Format (then base64, standard alphabet, padded): the magic `MAPT`, a version byte
//! (1), then one record per prefix:
//!
//! | bytes | field |
//! |---|---|
//! | 1–5 | registration index in the document (LEB128 varint) |
//! | 1 | flags: bits 0–2 state (index in [`PrefixState::ALL`]), bit 3 telemetry, bit 4 IPv6, bit 5 has a prefix key |
//! | 1 | prefix length |
//! | ⌈len/8⌉ | the network's significant bytes, most significant first |
//!
//! Decoding never panics: a damaged table gives an error naming the record and byte.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};

use base64::Engine as _;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::state::PrefixState;

const MAGIC: &[u8; 4] = b"MAPT";
const VERSION: u8 = 1;

/// One packed prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Registration index in the document.
    pub registration: u32,
    /// Validation state.
    pub state: PrefixState,
    /// Telemetry opt-in.
    pub telemetry: bool,
    /// Whether the prefix has a partner-registered prefix key.
    pub has_key: bool,
    /// The prefix. Host bits are always zero (they are not stored).
    pub net: IpNet,
}

/// Why a packed table could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackError {
    /// The text is not base64. Re-create the table with `mapsctl pack`.
    Base64,
    /// The bytes do not start with `MAPT` and version 1.
    Header,
    /// Record `record` (0-based) is cut short or malformed at byte `offset`.
    Record {
        /// 0-based record number.
        record: usize,
        /// Byte offset in the decoded table.
        offset: usize,
        /// What is wrong.
        what: &'static str,
    },
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PackError::Base64 => f.write_str("the prefix table is not base64 text"),
            PackError::Header => f.write_str("the prefix table does not start with MAPT version 1"),
            PackError::Record {
                record,
                offset,
                what,
            } => {
                write!(f, "prefix table record {record} (byte {offset}): {what}")
            }
        }
    }
}

/// Encodes records as base64 text for the `prefix_table` field.
pub fn encode(records: &[Record]) -> String {
    base64::engine::general_purpose::STANDARD.encode(encode_bytes(records))
}

/// Encodes records as table bytes (header and records).
fn encode_bytes(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + records.len() * 7);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    for r in records {
        let mut v = r.registration;
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
        let state = PrefixState::ALL
            .iter()
            .position(|s| *s == r.state)
            .unwrap_or(0) as u8;
        let v6 = matches!(r.net, IpNet::V6(_));
        out.push(
            state | (u8::from(r.telemetry) << 3) | (u8::from(v6) << 4) | (u8::from(r.has_key) << 5),
        );
        out.push(r.net.prefix_len());
        let n = usize::from(r.net.prefix_len()).div_ceil(8);
        match r.net {
            IpNet::V4(net) => out.extend(net.network().octets().iter().take(n)),
            IpNet::V6(net) => out.extend(net.network().octets().iter().take(n)),
        }
    }
    out
}

/// A packed prefix table as the policy document holds it: the decoded bytes (base64
/// text in JSON). Deserialising decodes straight from the JSON text, so a large table
/// is never held twice.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PackedTable(Vec<u8>);

impl PackedTable {
    /// The table of these records.
    pub fn from_records(records: &[Record]) -> Self {
        PackedTable(encode_bytes(records))
    }

    /// The encoded bytes (header and records).
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The records, after checking the header.
    pub fn records(&self) -> Result<Records<'_>, PackError> {
        if self.0.get(..4) != Some(MAGIC.as_slice()) || self.0.get(4) != Some(&VERSION) {
            return Err(PackError::Header);
        }
        Ok(records(&self.0))
    }
}

impl serde::Serialize for PackedTable {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> serde::Deserialize<'de> for PackedTable {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = PackedTable;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a packed prefix table (base64 text, as `mapsctl pack` writes it)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PackedTable, E> {
                base64::engine::general_purpose::STANDARD
                    .decode(v.trim())
                    .map(PackedTable)
                    .map_err(|_| {
                        E::custom(
                            "the prefix table is not base64 text; re-create it with `mapsctl pack`",
                        )
                    })
            }
        }
        d.deserialize_str(V)
    }
}

/// Decodes the base64 text of a `prefix_table` into its bytes.
#[cfg(test)]
fn decode_text(text: &str) -> Result<Vec<u8>, PackError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| PackError::Base64)?;
    if bytes.get(..4) != Some(MAGIC.as_slice()) || bytes.get(4) != Some(&VERSION) {
        return Err(PackError::Header);
    }
    Ok(bytes)
}

/// Iterates the records of decoded table bytes (from [`decode_text`]).
pub fn records(bytes: &[u8]) -> Records<'_> {
    Records { bytes, at: 5, n: 0 }
}

/// Iterator over packed records; stops after the first error.
pub struct Records<'a> {
    bytes: &'a [u8],
    at: usize,
    n: usize,
}

impl Records<'_> {
    fn fail(&mut self, what: &'static str) -> Option<Result<Record, PackError>> {
        let e = PackError::Record {
            record: self.n,
            offset: self.at,
            what,
        };
        self.at = self.bytes.len();
        Some(Err(e))
    }
}

impl Iterator for Records<'_> {
    type Item = Result<Record, PackError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.bytes.len() {
            return None;
        }
        let mut reg: u32 = 0;
        let mut shift = 0;
        loop {
            let Some(&b) = self.bytes.get(self.at) else {
                return self.fail("cut short in the registration index");
            };
            self.at += 1;
            if shift > 28 {
                return self.fail("registration index too large");
            }
            reg |= u32::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        let (Some(&flags), Some(&len)) = (self.bytes.get(self.at), self.bytes.get(self.at + 1))
        else {
            return self.fail("cut short in flags or length");
        };
        let Some(&state) = PrefixState::ALL.get(usize::from(flags & 7)) else {
            return self.fail("unknown state");
        };
        if flags & 0xc0 != 0 {
            return self.fail("unknown flag bits");
        }
        let v6 = flags & 0x10 != 0;
        let max = if v6 { 128 } else { 32 };
        if len > max {
            return self.fail("prefix length out of range");
        }
        let n = usize::from(len).div_ceil(8);
        let start = self.at + 2;
        let Some(addr) = self.bytes.get(start..start + n) else {
            return self.fail("cut short in the address");
        };
        let net = if v6 {
            let mut o = [0u8; 16];
            for (d, s) in o.iter_mut().zip(addr) {
                *d = *s;
            }
            Ipv6Net::new(Ipv6Addr::from(o), len).map(IpNet::V6)
        } else {
            let mut o = [0u8; 4];
            for (d, s) in o.iter_mut().zip(addr) {
                *d = *s;
            }
            Ipv4Net::new(Ipv4Addr::from(o), len).map(IpNet::V4)
        };
        let Ok(net) = net else {
            return self.fail("prefix length out of range");
        };
        if net.trunc() != net {
            return self.fail("host bits set");
        }
        self.at = start + n;
        self.n += 1;
        Some(Ok(Record {
            registration: reg,
            state,
            telemetry: flags & 0x08 != 0,
            has_key: flags & 0x20 != 0,
            net,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_damage() {
        let recs = [
            Record {
                registration: 0,
                state: PrefixState::Verified,
                telemetry: true,
                has_key: false,
                net: "20.1.0.0/16".parse().unwrap(),
            },
            Record {
                registration: 300,
                state: PrefixState::Pending,
                telemetry: false,
                has_key: true,
                net: "2603:1000::/25".parse().unwrap(),
            },
            Record {
                registration: 7,
                state: PrefixState::Unknown,
                telemetry: false,
                has_key: false,
                net: "0.0.0.0/0".parse().unwrap(),
            },
        ];
        let text = encode(&recs);
        let bytes = decode_text(&text).unwrap();
        let back: Vec<Record> = records(&bytes).map(|r| r.unwrap()).collect();
        assert_eq!(back, recs);
        assert_eq!(decode_text("not base64!"), Err(PackError::Base64));
        assert_eq!(decode_text("AAAA"), Err(PackError::Header));
        for cut in 5..bytes.len() {
            let r: Vec<_> = records(&bytes[..cut]).collect();
            assert!(r.len() <= 3);
        }
        let mut bad = bytes.clone();
        bad[6] = 0xff; // flags of record 0
        assert!(matches!(
            records(&bad).next(),
            Some(Err(PackError::Record { record: 0, .. }))
        ));
    }
}
