//! A precomputed HMAC-SHA1 key schedule: the key material signature 1.0 signs with.
//!
//! HMAC-SHA1 of a message `m` under a key `K` is `SHA1((K0 ^ opad) || SHA1((K0 ^ ipad) || m))`,
//! where `K0` is the key padded (or, past 64 bytes, hashed then padded) to one 64-byte block. The
//! two padded blocks are always the first block of their hash: their SHA-1 states after one
//! compression depend on the key alone. [`HmacSha1Key`] keeps those two states, computed once
//! per credentials value, so that signing starts from them instead of re-keying every call.
//!
//! The two states ARE the key (anyone holding them can sign): they are zeroed on drop (as are
//! the working copies made while signing, and every block buffer that held key or message bytes)
//! and never shown by `Debug`.
//!
//! Why not the `hmac` crate's keyed `Hmac<Sha1>` (which also keeps the two states, and could be
//! cloned per message): its states are not zeroed on drop, and these are secret-equivalent. The
//! SHA-1 compression is the `sha1` crate's (with the CPU's SHA instructions where present); only
//! the padding and the two-pass HMAC are written here, and the tests check them against the
//! `sha1` and `hmac` crates at every message length and key size class.
//!
//! Depends on nothing but external crates (`sha1`, `zeroize`).

use std::fmt;

use sha1::digest::generic_array::GenericArray;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// SHA-1's block size.
const BLOCK: usize = 64;
/// SHA-1's initial state (FIPS 180-4, 5.3.1).
const SHA1_INIT: [u32; 5] = [
    0x6745_2301,
    0xEFCD_AB89,
    0x98BA_DCFE,
    0x1032_5476,
    0xC3D2_E1F0,
];

/// The HMAC-SHA1 key schedule of one key: the SHA-1 states after the inner and the outer padded
/// key block. Zeroed on drop; `Debug` shows nothing of it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct HmacSha1Key {
    inner: [u32; 5],
    outer: [u32; 5],
}

impl fmt::Debug for HmacSha1Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacSha1Key(<redacted>)")
    }
}

/// Compresses one 64-byte block into `state`.
fn compress(state: &mut [u32; 5], block: &[u8; BLOCK]) {
    sha1::compress(state, std::slice::from_ref(GenericArray::from_slice(block)));
}

/// Finishes a SHA-1 hash whose state is `state` after `before` bytes (whole blocks) and that
/// continues with `message`: the digest. Every buffer that held message bytes is zeroed.
fn finish(mut state: [u32; 5], before: u64, message: &[u8]) -> [u8; 20] {
    let (blocks, tail) = message.as_chunks::<BLOCK>();
    for block in blocks {
        compress(&mut state, block);
    }
    // The tail, `0x80`, zeros and the length in bits (big-endian) fill one or two blocks.
    let mut last = [[0u8; BLOCK]; 2];
    let flat = last.as_flattened_mut();
    flat[..tail.len()].copy_from_slice(tail);
    flat[tail.len()] = 0x80;
    let used = if tail.len() < BLOCK - 8 { 1 } else { 2 };
    let bits = before
        .wrapping_add(message.len() as u64)
        .wrapping_mul(8)
        .to_be_bytes();
    flat[used * BLOCK - 8..used * BLOCK].copy_from_slice(&bits);
    for block in &last[..used] {
        compress(&mut state, block);
    }
    last.as_flattened_mut().zeroize();
    let mut digest = [0u8; 20];
    for (out, word) in digest.chunks_exact_mut(4).zip(state) {
        out.copy_from_slice(&word.to_be_bytes());
    }
    state.zeroize();
    digest
}

impl HmacSha1Key {
    /// The key schedule of the key made of `parts` concatenated (signature 1.0 signs with
    /// `secret + "&"`: pass `[secret, b"&"]`, without building the key in a buffer).
    pub(crate) fn new(parts: &[&[u8]]) -> Self {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        // K0: the key in one zeroed block, or its SHA-1 when longer than a block.
        let mut k0 = [0u8; BLOCK];
        if len <= BLOCK {
            let mut at = 0;
            for part in parts {
                k0[at..at + part.len()].copy_from_slice(part);
                at += part.len();
            }
        } else {
            let mut key = zeroize::Zeroizing::new(Vec::with_capacity(len));
            for part in parts {
                key.extend_from_slice(part);
            }
            let mut digest = finish(SHA1_INIT, 0, &key);
            k0[..20].copy_from_slice(&digest);
            digest.zeroize();
        }
        let mut pad = [0u8; BLOCK];
        let mut schedule = |byte: u8| {
            for (p, k) in pad.iter_mut().zip(&k0) {
                *p = k ^ byte;
            }
            let mut state = SHA1_INIT;
            compress(&mut state, &pad);
            state
        };
        let inner = schedule(0x36);
        let outer = schedule(0x5c);
        pad.zeroize();
        k0.zeroize();
        Self { inner, outer }
    }

    /// HMAC-SHA1 of `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 20] {
        let mut writer = self.writer();
        writer.write(message);
        writer.finish()
    }

    /// HMAC-SHA1 of a message written in pieces (see [`HmacSha1Writer`]): the message is
    /// hashed as it comes, never gathered in a buffer.
    pub(crate) fn writer(&self) -> HmacSha1Writer<'_> {
        HmacSha1Writer {
            key: self,
            state: self.inner,
            block: [0; BLOCK],
            filled: 0,
            hashed: BLOCK as u64,
        }
    }

    /// The two states' words, for tests that look for them in output.
    #[cfg(test)]
    pub(crate) fn state_words(&self) -> impl Iterator<Item = u32> + '_ {
        self.inner.iter().chain(&self.outer).copied()
    }
}

/// An HMAC-SHA1 under way: the inner hash's state and its partial block.
///
/// [`write`](Self::write) copies small pieces into the block and compresses it when full, so
/// that signature 1.0's string to sign (which can hold a security token) is hashed as the signer
/// encodes it and never exists whole. The state and the block (message bytes) are zeroed on
/// drop, whether or not [`finish`](Self::finish) ran; `finish` borrows the writer, so that it is
/// not moved (a move would leave a copy that is not zeroed) once it holds message bytes.
/// `Debug` shows nothing of them.
pub(crate) struct HmacSha1Writer<'k> {
    key: &'k HmacSha1Key,
    state: [u32; 5],
    block: [u8; BLOCK],
    /// Bytes of `block` in use (always below `BLOCK` between writes).
    filled: usize,
    /// Bytes compressed into `state` so far, the key block included.
    hashed: u64,
}

impl fmt::Debug for HmacSha1Writer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacSha1Writer(<redacted>)")
    }
}

impl HmacSha1Writer<'_> {
    /// Appends `bytes` to the message.
    #[inline]
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        let end = self.filled + bytes.len();
        if let Some(room) = self.block.get_mut(self.filled..end).filter(|_| end < BLOCK) {
            room.copy_from_slice(bytes);
            self.filled = end;
        } else {
            self.write_across(bytes);
        }
    }

    /// A write that fills the block (and perhaps more blocks).
    #[inline(never)]
    fn write_across(&mut self, bytes: &[u8]) {
        let (head, rest) = bytes.split_at((BLOCK - self.filled).min(bytes.len()));
        self.block[self.filled..self.filled + head.len()].copy_from_slice(head);
        self.filled += head.len();
        if self.filled < BLOCK {
            return;
        }
        compress(&mut self.state, &self.block);
        let (blocks, tail) = rest.as_chunks::<BLOCK>();
        for block in blocks {
            compress(&mut self.state, block);
        }
        self.hashed += (BLOCK * (1 + blocks.len())) as u64;
        self.block[..tail.len()].copy_from_slice(tail);
        self.filled = tail.len();
    }

    /// The MAC of everything written. The writer is spent: it is zeroed here, and again as it
    /// drops.
    pub(crate) fn finish(&mut self) -> [u8; 20] {
        let mut inner = finish(self.state, self.hashed, &self.block[..self.filled]);
        let mac = finish(self.key.outer, BLOCK as u64, &inner);
        inner.zeroize();
        self.state.zeroize();
        self.block.zeroize();
        self.filled = 0;
        mac
    }
}

impl Drop for HmacSha1Writer<'_> {
    fn drop(&mut self) {
        self.state.zeroize();
        self.block.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};
    use sha1::{Digest, Sha1};

    fn reference(key: &[u8], message: &[u8]) -> [u8; 20] {
        let mut mac = Hmac::<Sha1>::new_from_slice(key).unwrap();
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    #[test]
    fn sha1_padding_matches_the_sha1_crate_at_every_length() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for n in 0..data.len() {
            let ours = finish(SHA1_INIT, 0, &data[..n]);
            let theirs: [u8; 20] = Sha1::digest(&data[..n]).into();
            assert_eq!(ours, theirs, "{n} bytes");
        }
    }

    #[test]
    fn hmac_matches_the_hmac_crate_for_keys_and_messages_of_every_size() {
        let data: Vec<u8> = (0..200u32).map(|i| (i * 13 + 1) as u8).collect();
        for key_len in [0, 1, 19, 20, 55, 63, 64, 65, 100, 129] {
            let key = &data[..key_len];
            let schedule = HmacSha1Key::new(&[key]);
            for msg_len in [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 200] {
                let message = &data[..msg_len];
                assert_eq!(
                    schedule.sign(message),
                    reference(key, message),
                    "key {key_len}, message {msg_len}"
                );
            }
        }
    }

    #[test]
    fn written_in_pieces_the_mac_is_the_same() {
        let data: Vec<u8> = (0..400u32).map(|i| (i * 31 + 5) as u8).collect();
        let key = HmacSha1Key::new(&[b"secret", b"&"]);
        for len in [0, 1, 55, 56, 63, 64, 65, 127, 128, 129, 200, 400] {
            let message = &data[..len];
            for piece in [1, 3, 7, 63, 64, 65, 130, 400] {
                let mut writer = key.writer();
                for chunk in message.chunks(piece) {
                    writer.write(chunk);
                }
                writer.write(b"");
                assert_eq!(
                    writer.finish(),
                    reference(b"secret&", message),
                    "{len} bytes in pieces of {piece}"
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn written_at_any_cuts_the_mac_is_the_hmac_crates(
            key in proptest::collection::vec(proptest::num::u8::ANY, 0..130),
            message in proptest::collection::vec(proptest::num::u8::ANY, 0..700),
            mut cuts in proptest::collection::vec(0usize..700, 0..24),
        ) {
            let schedule = HmacSha1Key::new(&[&key]);
            let mut writer = schedule.writer();
            cuts.push(message.len());
            cuts.sort_unstable();
            let mut from = 0;
            for cut in cuts {
                let cut = cut.min(message.len());
                writer.write(&message[from..cut.max(from)]);
                from = cut.max(from);
            }
            proptest::prop_assert_eq!(writer.finish(), reference(&key, &message));
        }
    }

    #[test]
    fn the_writer_is_never_shown_and_is_zeroed_once_finished() {
        let key = HmacSha1Key::new(&[b"secret", b"&"]);
        let mut writer = key.writer();
        writer.write(b"SecurityToken%3Dsecret-token");
        assert_eq!(format!("{writer:?}"), "HmacSha1Writer(<redacted>)");
        assert!(writer.block.iter().any(|&b| b != 0));
        let _ = writer.finish();
        // Spent: nothing of the message or of the key's state is left in it.
        assert_eq!(
            (writer.state, writer.block, writer.filled),
            ([0; 5], [0; BLOCK], 0)
        );
    }

    #[test]
    fn the_key_may_come_in_parts() {
        for secret in ["", "s", &"k".repeat(63), &"k".repeat(64), &"k".repeat(80)] {
            let joined = format!("{secret}&");
            assert_eq!(
                HmacSha1Key::new(&[secret.as_bytes(), b"&"]).sign(b"GET&%2F&A%3D1"),
                reference(joined.as_bytes(), b"GET&%2F&A%3D1")
            );
        }
    }

    #[test]
    fn rfc_2202_vectors() {
        // RFC 2202, test cases 1, 2 and 6.
        let hex = |d: [u8; 20]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(HmacSha1Key::new(&[&[0x0b; 20]]).sign(b"Hi There")),
            "b617318655057264e28bc0b6fb378c8ef146be00"
        );
        assert_eq!(
            hex(HmacSha1Key::new(&[b"Jefe"]).sign(b"what do ya want for nothing?")),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            hex(HmacSha1Key::new(&[&[0xaa; 80]])
                .sign(b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "aa4ae5e15272d00e95705637ce8a3b55ed402112"
        );
    }

    #[test]
    fn zeroed_on_drop_and_never_shown() {
        fn zeroed_on_drop<T: ZeroizeOnDrop>() {}
        zeroed_on_drop::<HmacSha1Key>();
        let mut key = HmacSha1Key::new(&[b"secret", b"&"]);
        let dbg = format!("{key:?} {key:#?}");
        assert_eq!(dbg, "HmacSha1Key(<redacted>) HmacSha1Key(<redacted>)");
        key.zeroize();
        assert_eq!((key.inner, key.outer), ([0; 5], [0; 5]));
    }
}
