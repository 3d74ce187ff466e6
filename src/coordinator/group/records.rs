//! The records of `__consumer_offsets`, in Kafka's own key and value schemas (group-coordinator's
//! `OffsetCommitKey`/`OffsetCommitValue`/`GroupMetadataKey`/`GroupMetadataValue`), so that Kafka's tools can read the
//! topic. kafka-protocol does not ship these schemas; the primitives are
//! [`record_codec`](crate::coordinator::record_codec)'s.
//!
//! Key: int16 version (0 or 1: an offset commit; 2: group metadata) then the fields. Value: int16 version then the
//! fields; a null value is a tombstone. Kafka writes OffsetCommitValue v3 (v1 when an explicit expiry is set) and
//! GroupMetadataValue v3; v0..=v4 and v0..=v3 are read.

use bytes::{BufMut, Bytes, BytesMut};

use crate::coordinator::record_codec::{
    get_bytes, get_compact_string, get_i16, get_i32, get_i64, get_nullable_string, get_string,
    put_bytes, put_nullable_string, put_string,
};

use super::ids::{GroupId, GroupInstanceId, MemberId};

pub use crate::coordinator::record_codec::RecordError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
    /// Only set by OffsetCommit v2..=v4 requests that carry a retention time.
    pub expire_timestamp_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadata {
    pub member_id: MemberId,
    pub group_instance_id: Option<GroupInstanceId>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<MemberId>,
    pub current_state_timestamp_ms: i64,
    pub members: Vec<MemberMetadata>,
}

/// One record of a `__consumer_offsets` partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoordinatorRecord {
    OffsetCommit {
        group: GroupId,
        topic: String,
        partition: i32,
        value: Option<OffsetCommitValue>,
    },
    GroupMetadata {
        group: GroupId,
        value: Option<GroupMetadataValue>,
    },
}

impl CoordinatorRecord {
    pub fn encode_key(&self) -> Result<Bytes, RecordError> {
        let mut buf = BytesMut::new();
        match self {
            CoordinatorRecord::OffsetCommit {
                group,
                topic,
                partition,
                ..
            } => {
                buf.put_i16(1);
                put_string(&mut buf, group.as_str())?;
                put_string(&mut buf, topic)?;
                buf.put_i32(*partition);
            }
            CoordinatorRecord::GroupMetadata { group, .. } => {
                buf.put_i16(2);
                put_string(&mut buf, group.as_str())?;
            }
        }
        Ok(buf.freeze())
    }

    pub fn encode_value(&self) -> Result<Option<Bytes>, RecordError> {
        let mut buf = BytesMut::new();
        match self {
            CoordinatorRecord::OffsetCommit { value: None, .. }
            | CoordinatorRecord::GroupMetadata { value: None, .. } => return Ok(None),
            CoordinatorRecord::OffsetCommit { value: Some(v), .. } => match v.expire_timestamp_ms {
                Some(expire) => {
                    buf.put_i16(1);
                    buf.put_i64(v.offset);
                    put_string(&mut buf, &v.metadata)?;
                    buf.put_i64(v.commit_timestamp_ms);
                    buf.put_i64(expire);
                }
                None => {
                    buf.put_i16(3);
                    buf.put_i64(v.offset);
                    buf.put_i32(v.leader_epoch);
                    put_string(&mut buf, &v.metadata)?;
                    buf.put_i64(v.commit_timestamp_ms);
                }
            },
            CoordinatorRecord::GroupMetadata { value: Some(v), .. } => {
                buf.put_i16(3);
                put_string(&mut buf, &v.protocol_type)?;
                buf.put_i32(v.generation);
                put_nullable_string(&mut buf, v.protocol.as_deref())?;
                put_nullable_string(&mut buf, v.leader.as_ref().map(MemberId::as_str))?;
                buf.put_i64(v.current_state_timestamp_ms);
                buf.put_i32(i32::try_from(v.members.len()).map_err(|_| RecordError::TooLong)?);
                for m in &v.members {
                    put_string(&mut buf, m.member_id.as_str())?;
                    put_nullable_string(
                        &mut buf,
                        m.group_instance_id.as_ref().map(GroupInstanceId::as_str),
                    )?;
                    put_string(&mut buf, &m.client_id)?;
                    put_string(&mut buf, &m.client_host)?;
                    buf.put_i32(m.rebalance_timeout_ms);
                    buf.put_i32(m.session_timeout_ms);
                    put_bytes(&mut buf, &m.subscription)?;
                    put_bytes(&mut buf, &m.assignment)?;
                }
            }
        }
        Ok(Some(buf.freeze()))
    }

    /// Decodes a record; `Ok(None)` for record types this coordinator does not keep (KIP-848 consumer groups, share
    /// groups), which loading skips.
    pub fn decode(
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<Option<CoordinatorRecord>, RecordError> {
        let mut key = key;
        let version = get_i16(&mut key)?;
        match version {
            0 | 1 => {
                let group = GroupId::from(get_string(&mut key)?);
                let topic = get_string(&mut key)?;
                let partition = get_i32(&mut key)?;
                let value = value.map(decode_offset_value).transpose()?;
                Ok(Some(CoordinatorRecord::OffsetCommit {
                    group,
                    topic,
                    partition,
                    value,
                }))
            }
            2 => {
                let group = GroupId::from(get_string(&mut key)?);
                let value = value.map(decode_group_value).transpose()?;
                Ok(Some(CoordinatorRecord::GroupMetadata { group, value }))
            }
            _ => Ok(None),
        }
    }
}

fn decode_offset_value(mut buf: &[u8]) -> Result<OffsetCommitValue, RecordError> {
    let version = get_i16(&mut buf)?;
    if !(0..=4).contains(&version) {
        return Err(RecordError::Version {
            what: "OffsetCommitValue",
            version,
        });
    }
    let flexible = version >= 4;
    let offset = get_i64(&mut buf)?;
    let leader_epoch = if version >= 3 { get_i32(&mut buf)? } else { -1 };
    let metadata = if flexible {
        get_compact_string(&mut buf)?
    } else {
        get_string(&mut buf)?
    };
    let commit_timestamp_ms = get_i64(&mut buf)?;
    let expire_timestamp_ms = match version {
        1 => Some(get_i64(&mut buf)?).filter(|t| *t >= 0),
        _ => None,
    };
    // v4's tagged fields (the topic id) carry nothing this coordinator needs.
    Ok(OffsetCommitValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
        expire_timestamp_ms,
    })
}

fn decode_group_value(mut buf: &[u8]) -> Result<GroupMetadataValue, RecordError> {
    let version = get_i16(&mut buf)?;
    if !(0..=3).contains(&version) {
        return Err(RecordError::Version {
            what: "GroupMetadataValue",
            version,
        });
    }
    let protocol_type = get_string(&mut buf)?;
    let generation = get_i32(&mut buf)?;
    let protocol = get_nullable_string(&mut buf)?;
    let leader = get_nullable_string(&mut buf)?.map(MemberId::from);
    let current_state_timestamp_ms = if version >= 2 { get_i64(&mut buf)? } else { -1 };
    let count = get_i32(&mut buf)?.max(0);
    let mut members = Vec::new();
    for _ in 0..count {
        let member_id = MemberId::from(get_string(&mut buf)?);
        let group_instance_id = if version >= 3 {
            get_nullable_string(&mut buf)?.map(GroupInstanceId::from)
        } else {
            None
        };
        let client_id = get_string(&mut buf)?;
        let client_host = get_string(&mut buf)?;
        let session_then_rebalance = version == 0;
        let (rebalance_timeout_ms, session_timeout_ms) = if session_then_rebalance {
            let session = get_i32(&mut buf)?;
            (session, session)
        } else {
            let rebalance = get_i32(&mut buf)?;
            (rebalance, get_i32(&mut buf)?)
        };
        let subscription = get_bytes(&mut buf)?;
        let assignment = get_bytes(&mut buf)?;
        members.push(MemberMetadata {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Ok(GroupMetadataValue {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp_ms,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(record: CoordinatorRecord) {
        let key = record.encode_key().expect("key");
        let value = record.encode_value().expect("value");
        let decoded = CoordinatorRecord::decode(&key, value.as_deref())
            .expect("decodes")
            .expect("known type");
        assert_eq!(decoded, record);
    }

    #[test]
    fn offset_commits_round_trip_in_both_written_versions() {
        for expire in [None, Some(99)] {
            round_trip(CoordinatorRecord::OffsetCommit {
                group: "g".into(),
                topic: "t".into(),
                partition: 3,
                value: Some(OffsetCommitValue {
                    offset: 42,
                    leader_epoch: if expire.is_some() { -1 } else { 7 },
                    metadata: "meta data".into(),
                    commit_timestamp_ms: 1_000,
                    expire_timestamp_ms: expire,
                }),
            });
        }
        round_trip(CoordinatorRecord::OffsetCommit {
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
            value: None,
        });
    }

    #[test]
    fn group_metadata_round_trips() {
        round_trip(CoordinatorRecord::GroupMetadata {
            group: "g".into(),
            value: Some(GroupMetadataValue {
                protocol_type: "consumer".into(),
                generation: 4,
                protocol: Some("range".into()),
                leader: Some("m1".into()),
                current_state_timestamp_ms: 5,
                members: vec![MemberMetadata {
                    member_id: "m1".into(),
                    group_instance_id: Some("i1".into()),
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    rebalance_timeout_ms: 300_000,
                    session_timeout_ms: 10_000,
                    subscription: Bytes::from_static(b"sub"),
                    assignment: Bytes::from_static(b"asg"),
                }],
            }),
        });
    }

    #[test]
    fn matches_kafkas_bytes_for_an_offset_commit_key() {
        let key = CoordinatorRecord::OffsetCommit {
            group: "g".into(),
            topic: "t".into(),
            partition: 1,
            value: None,
        }
        .encode_key()
        .expect("key");
        assert_eq!(&key[..], &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 1]);
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        assert_eq!(
            CoordinatorRecord::decode(&[0, 1, 0, 5, b'g'], None),
            Err(RecordError::Truncated)
        );
        assert_eq!(CoordinatorRecord::decode(&[0, 9], None), Ok(None));
    }
}
