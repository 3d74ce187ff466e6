//! Coordinators that keep their state in an internal topic and change it only by replaying that topic's records:
//! the [`runtime`] they share, the group coordinator and the transaction coordinator.

pub mod group;
pub mod record_codec;
pub mod runtime;
pub mod transaction;

/// Kafka's partitioning of a coordinator key (a group id, a transactional id) over its topic's partitions:
/// `Utils.abs(key.hashCode()) % partitions`, with Java's String.hashCode over UTF-16 code units.
pub fn partition_for(key: &str, partitions: i32) -> i32 {
    let hash = key.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn java_hash(s: &str) -> i32 {
        s.encode_utf16()
            .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)))
    }

    #[test]
    fn partitions_keys_as_kafka_does() {
        assert_eq!(partition_for("", 50), 0);
        assert_eq!(java_hash("a"), 97);
        assert_eq!(partition_for("a", 50), 97 % 50);
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE: Kafka's Utils.abs maps it to 0.
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        // A negative hash: abs, then modulo.
        let key = (0..100)
            .map(|i| format!("key-{i}"))
            .find(|k| java_hash(k) < 0)
            .expect("some key hashes negative");
        assert_eq!(partition_for(&key, 50), java_hash(&key).abs() % 50);
    }
}
