//! The openraft type configuration of the metadata log.

use std::io::Cursor;

use crate::record::MetadataRecord;

openraft::declare_raft_types!(
    /// One Raft entry carries the records of one controller write, committed atomically.
    pub(crate) MetadataLog:
        D = Vec<MetadataRecord>,
        R = (),
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<MetadataLog>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub(crate) type NodeId = u64;
pub(crate) type LogId = openraft::LogId<NodeId>;
pub(crate) type Entry = openraft::Entry<MetadataLog>;
pub(crate) type StorageError = openraft::StorageError<NodeId>;
pub(crate) type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;
pub(crate) type SnapshotMeta = openraft::SnapshotMeta<NodeId, openraft::BasicNode>;
pub(crate) type Raft = openraft::Raft<MetadataLog>;
