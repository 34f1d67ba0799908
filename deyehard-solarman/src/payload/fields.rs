//! Reading fixed-offset fields out of a payload without panicking: every accessor checks the
//! length and names the field it could not read.

use std::borrow::Cow;

/// Why a payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The payload ends before a required field.
    #[error("{message} payload too short for {field}: needs {needed} bytes, has {len}")]
    TooShort {
        /// Which payload (e.g. "handshake").
        message: &'static str,
        /// Which field.
        field: &'static str,
        /// Bytes needed to read it.
        needed: usize,
        /// Payload length.
        len: usize,
    },
    /// A serial number field does not hold a valid serial.
    #[error("{message} payload holds an invalid inverter serial: {source}")]
    BadSerial {
        /// Which payload.
        message: &'static str,
        /// Why the serial is invalid.
        source: deyehard_core::ParseIdError,
    },
}

/// A payload of one message type, read by offset.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields<'a> {
    payload: &'a [u8],
    message: &'static str,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(payload: &'a [u8], message: &'static str) -> Self {
        Self { payload, message }
    }

    pub(crate) fn message(&self) -> &'static str {
        self.message
    }

    pub(crate) fn bytes<const N: usize>(
        &self,
        offset: usize,
        field: &'static str,
    ) -> Result<[u8; N], PayloadError> {
        self.optional(offset, N)
            .and_then(|b| <[u8; N]>::try_from(b).ok())
            .ok_or(PayloadError::TooShort {
                message: self.message,
                field,
                needed: offset.saturating_add(N),
                len: self.payload.len(),
            })
    }

    pub(crate) fn u8(&self, offset: usize, field: &'static str) -> Result<u8, PayloadError> {
        self.bytes::<1>(offset, field).map(|[b]| b)
    }

    pub(crate) fn u16_le(&self, offset: usize, field: &'static str) -> Result<u16, PayloadError> {
        self.bytes(offset, field).map(u16::from_le_bytes)
    }

    pub(crate) fn u16_be(&self, offset: usize, field: &'static str) -> Result<u16, PayloadError> {
        self.bytes(offset, field).map(u16::from_be_bytes)
    }

    pub(crate) fn i16_le(&self, offset: usize, field: &'static str) -> Result<i16, PayloadError> {
        self.bytes(offset, field).map(i16::from_le_bytes)
    }

    pub(crate) fn u32_le(&self, offset: usize, field: &'static str) -> Result<u32, PayloadError> {
        self.bytes(offset, field).map(u32::from_le_bytes)
    }

    /// A NUL-padded text field of up to `len` bytes, clipped to the payload end: `None` when the
    /// payload stops before it or it is empty. Non-ASCII bytes are replaced.
    pub(crate) fn text(&self, offset: usize, len: usize) -> Option<String> {
        self.text_ref(offset, len).map(Cow::into_owned)
    }

    /// [`text`](Self::text) borrowing the payload when the field is plain printable ASCII.
    pub(crate) fn text_ref(&self, offset: usize, len: usize) -> Option<Cow<'a, str>> {
        let text = self.text_bytes(offset, len)?;
        if text.printable {
            std::str::from_utf8(text.bytes).ok().map(Cow::Borrowed)
        } else {
            let mut out = Vec::with_capacity(text.max_len());
            text.push_to(&mut out);
            // Printable ASCII and U+FFFD only: always valid.
            String::from_utf8(out).ok().map(Cow::Owned)
        }
    }

    /// The bytes of the text field [`text`](Self::text) reads, before any replacement.
    pub(crate) fn text_bytes(&self, offset: usize, len: usize) -> Option<Text<'a>> {
        let end = offset.saturating_add(len).min(self.payload.len());
        Text::new(self.payload.get(offset..end)?)
    }

    /// `len` raw bytes if the payload holds them all.
    pub(crate) fn optional(&self, offset: usize, len: usize) -> Option<&'a [u8]> {
        self.payload.get(offset..offset.checked_add(len)?)
    }
}

/// A text field's bytes: up to the first NUL, without surrounding ASCII white space, never empty.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Text<'a> {
    bytes: &'a [u8],
    /// Whether every byte is printable ASCII (the bytes are then the text as is).
    printable: bool,
}

impl<'a> Text<'a> {
    /// The text of a NUL-padded field.
    fn new(raw: &'a [u8]) -> Option<Self> {
        // One pass finds the NUL padding and whether everything before it is printable.
        let mut end = raw.len();
        let mut printable = true;
        for (i, &b) in raw.iter().enumerate() {
            if b == 0 {
                end = i;
                break;
            }
            printable &= is_printable(b);
        }
        let bytes = raw[..end].trim_ascii();
        // Trimmed white space (a tab, say) may have been the only unprintable byte.
        let printable = printable || bytes.iter().copied().all(is_printable);
        (!bytes.is_empty()).then_some(Self { bytes, printable })
    }

    /// The UTF-8 length of the text after replacement, at most.
    pub(crate) fn max_len(&self) -> usize {
        if self.printable {
            self.bytes.len()
        } else {
            self.bytes.len() * char::REPLACEMENT_CHARACTER.len_utf8()
        }
    }

    /// Appends the text as UTF-8, each byte that is not printable ASCII replaced by U+FFFD.
    pub(crate) fn push_to(&self, out: &mut Vec<u8>) {
        if self.printable {
            out.extend_from_slice(self.bytes);
        } else {
            let mut replacement = [0; 4];
            let replacement = char::REPLACEMENT_CHARACTER.encode_utf8(&mut replacement);
            for &b in self.bytes {
                if is_printable(b) {
                    out.push(b);
                } else {
                    out.extend_from_slice(replacement.as_bytes());
                }
            }
        }
    }
}

fn is_printable(b: u8) -> bool {
    b.is_ascii_graphic() || b == b' '
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_check_the_length_and_name_the_field() {
        let f = Fields::new(&[0x01, 0x02, 0x03], "test");
        assert_eq!(f.u16_le(0, "a"), Ok(0x0201));
        assert_eq!(f.u16_be(1, "b"), Ok(0x0203));
        assert_eq!(
            f.u32_le(0, "c"),
            Err(PayloadError::TooShort {
                message: "test",
                field: "c",
                needed: 4,
                len: 3
            })
        );
        assert!(f.u8(usize::MAX, "huge").is_err());
    }

    #[test]
    fn text_stops_at_nul_and_is_clipped() {
        let f = Fields::new(b"AB\0\0 x\x01", "test");
        assert_eq!(f.text(0, 4), Some("AB".into()));
        assert_eq!(f.text(2, 2), None);
        assert_eq!(f.text(4, 40), Some("x\u{FFFD}".into()));
        assert_eq!(f.text(40, 4), None);
    }

    #[test]
    fn trimmed_white_space_keeps_a_field_borrowed() {
        let f = Fields::new(b"\tAB\t\0\x7F\t", "test");
        assert!(matches!(f.text_ref(0, 5), Some(Cow::Borrowed("AB"))));
        assert_eq!(f.text(5, 2), Some("\u{FFFD}".into()));
    }
}
