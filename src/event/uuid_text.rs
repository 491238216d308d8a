//! Event and request ids: UUIDv7s made from a time already read, and their hyphenated text.
//!
//! Every request makes two ids (its request id, unless the client sent one, and its event's
//! id) and every event's id is written as text by each sink, so both are on the hot path:
//! `Uuid::new_v7` converts its `Timestamp` through seconds and nanoseconds and places a
//! counter, and `uuid`'s text encoder looks each nibble up on its own.

use uuid::Uuid;

use crate::text::hex_pair;

/// The length of a hyphenated UUID: `01a24254-d817-7c42-8bb7-14e5b6cd5bdf`.
pub(crate) const HYPHENATED_LEN: usize = 36;

/// Where each of the 16 bytes' two digits go in the hyphenated text.
const POSITIONS: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

/// A UUIDv7 of `unix_millis`, its other 74 bits random: uuid's own generator (ChaCha, a
/// CSPRNG) draws them, as for `Uuid::new_v4`, whose version and variant bits are the ones
/// a v7 replaces.
pub(crate) fn uuid_v7(unix_millis: u64) -> Uuid {
    let random = Uuid::new_v4();
    let mut tail = [0u8; 10];
    tail.copy_from_slice(&random.as_bytes()[6..]);
    uuid::Builder::from_unix_timestamp_millis(unix_millis, &tail).into_uuid()
}

/// `id` hyphenated in lower case, as `Uuid`'s `Display` and `Serialize` write it.
pub(crate) fn hyphenated(id: &Uuid) -> [u8; HYPHENATED_LEN] {
    let mut text = [b'-'; HYPHENATED_LEN];
    for (byte, at) in id.as_bytes().iter().zip(POSITIONS) {
        text[at..at + 2].copy_from_slice(hex_pair(*byte));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_text_is_uuids_own(bytes in any::<[u8; 16]>()) {
            let id = Uuid::from_bytes(bytes);
            let text = hyphenated(&id);
            prop_assert_eq!(std::str::from_utf8(&text).unwrap(), id.hyphenated().to_string());
        }

        #[test]
        fn a_v7_carries_its_milliseconds(millis in 0u64..(1 << 48)) {
            let id = uuid_v7(millis);
            prop_assert_eq!(id.get_version_num(), 7);
            prop_assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
            let (secs, nanos) = id.get_timestamp().expect("a v7 has one").to_unix();
            prop_assert_eq!(secs * 1000 + u64::from(nanos) / 1_000_000, millis);
        }
    }

    #[test]
    fn the_74_other_bits_are_random() {
        // Each of the 74 bits outside the time, version and variant is seen both ways.
        let mut ones = [0u32; 128];
        for _ in 0..512 {
            let bits = uuid_v7(1_700_000_000_000).as_u128();
            for (i, count) in ones.iter_mut().enumerate() {
                *count += u32::try_from((bits >> i) & 1).unwrap();
            }
        }
        let fixed = |i: usize| i >= 80 || (76..80).contains(&i) || (62..64).contains(&i);
        for (i, count) in ones.iter().enumerate() {
            if !fixed(i) {
                assert!(
                    (100..412).contains(count),
                    "bit {i} was 1 in {count} of 512"
                );
            }
        }
    }
}
