//! `meta.properties`: which cluster and node a log directory belongs to, as KRaft writes it (`version=1`,
//! `cluster.id`, `node.id`, `directory.id`) in Java properties form.
//!
//! Kafka's `kafka-storage.sh format` writes it before the first start; Ferrite's `ferrite format` does the same.
//! Without it a node formats its directory itself when it can tell which cluster it joins: the configured
//! `cluster.id`, or a fresh id when it is the only voter of its quorum (the zero-config single node). A node of a
//! larger quorum with neither refuses to start, since guessing would split the cluster into several. Once written,
//! the file is checked on every start: a directory of another cluster or node is refused, naming both.
//!
//! Written to a temporary file, synced and renamed, so a crash leaves either no file or a whole one.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::ids::BrokerId;

pub const FILE_NAME: &str = "meta.properties";

#[derive(Debug, thiserror::Error)]
pub enum MetaPropertiesError {
    #[error("cannot read or write {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} has no valid {key}")]
    Malformed { path: PathBuf, key: &'static str },
    #[error("{path} belongs to node {stored}, but this node's node.id is {configured}")]
    NodeIdMismatch {
        path: PathBuf,
        stored: i32,
        configured: i32,
    },
    #[error(
        "{path} belongs to cluster {stored}, but this node is configured for cluster {configured}"
    )]
    ClusterIdMismatch {
        path: PathBuf,
        stored: String,
        configured: String,
    },
    #[error(
        "{dir} is not formatted and this node is one of several controllers: run `ferrite format --cluster-id <id>` \
         (or kafka-storage.sh format -t <id>) with the same id on every node first, or set cluster.id"
    )]
    NotFormatted { dir: PathBuf },
    #[error(
        "{path} is already formatted (cluster {cluster_id}); use --ignore-formatted to accept that"
    )]
    AlreadyFormatted { path: PathBuf, cluster_id: String },
}

/// The contents of one directory's meta.properties.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaProperties {
    pub cluster_id: String,
    pub node_id: BrokerId,
    /// KIP-858's directory id, a random Kafka Uuid per log directory.
    pub directory_id: String,
}

impl MetaProperties {
    pub fn new(cluster_id: String, node_id: BrokerId) -> MetaProperties {
        MetaProperties {
            cluster_id,
            node_id,
            directory_id: random_kafka_uuid(),
        }
    }

    /// The directory's meta.properties, or `None` when it has none.
    pub fn read(dir: &Path) -> Result<Option<MetaProperties>, MetaPropertiesError> {
        let path = dir.join(FILE_NAME);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(MetaPropertiesError::Io { path, source }),
        };
        let value = |key: &'static str| {
            text.lines()
                .filter(|line| !line.trim_start().starts_with('#'))
                .find_map(|line| line.split_once('=').filter(|(k, _)| k.trim() == key))
                .map(|(_, v)| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .ok_or(MetaPropertiesError::Malformed {
                    path: path.clone(),
                    key,
                })
        };
        let node_id =
            value("node.id")?
                .parse::<i32>()
                .map_err(|_| MetaPropertiesError::Malformed {
                    path: path.clone(),
                    key: "node.id",
                })?;
        Ok(Some(MetaProperties {
            cluster_id: value("cluster.id")?,
            node_id: BrokerId(node_id),
            // Directories formatted before directory ids existed get one when next written.
            directory_id: value("directory.id").unwrap_or_else(|_| random_kafka_uuid()),
        }))
    }

    /// Writes the file durably (temporary file, fsync, rename, fsync of the directory).
    pub fn write(&self, dir: &Path) -> Result<(), MetaPropertiesError> {
        let path = dir.join(FILE_NAME);
        let io_error = |source| MetaPropertiesError::Io {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(dir).map_err(io_error)?;
        let text = format!(
            "#\n# Written by ferrite; the same fields as Kafka's KRaft meta.properties.\nnode.id={}\ndirectory.id={}\n\
             version=1\ncluster.id={}\n",
            self.node_id.0, self.directory_id, self.cluster_id
        );
        let tmp = dir.join(format!("{FILE_NAME}.tmp"));
        fs::write(&tmp, text).map_err(io_error)?;
        fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io_error)?;
        fs::rename(&tmp, &path).map_err(io_error)?;
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error)
    }

    /// What `ferrite format` does: writes a new meta.properties, or with `ignore_formatted` accepts an existing one
    /// (which must then be for the same node and cluster).
    pub fn format(
        dir: &Path,
        cluster_id: &str,
        node_id: BrokerId,
        ignore_formatted: bool,
    ) -> Result<MetaProperties, MetaPropertiesError> {
        if let Some(existing) = MetaProperties::read(dir)? {
            if !ignore_formatted {
                return Err(MetaPropertiesError::AlreadyFormatted {
                    path: dir.join(FILE_NAME),
                    cluster_id: existing.cluster_id,
                });
            }
            existing.check(dir, node_id, Some(cluster_id))?;
            return Ok(existing);
        }
        let properties = MetaProperties::new(cluster_id.to_string(), node_id);
        properties.write(dir)?;
        Ok(properties)
    }

    /// Start-up: checks the directory's meta.properties against the configuration, or formats the directory when
    /// the cluster is known (`configured_cluster_id`) or this node is a quorum of its own (`sole_voter`).
    pub fn load_or_format(
        dir: &Path,
        node_id: BrokerId,
        configured_cluster_id: Option<&str>,
        sole_voter: bool,
    ) -> Result<MetaProperties, MetaPropertiesError> {
        if let Some(existing) = MetaProperties::read(dir)? {
            existing.check(dir, node_id, configured_cluster_id)?;
            return Ok(existing);
        }
        let cluster_id = match configured_cluster_id {
            Some(id) => id.to_string(),
            None if sole_voter => random_kafka_uuid(),
            None => {
                return Err(MetaPropertiesError::NotFormatted {
                    dir: dir.to_path_buf(),
                })
            }
        };
        let properties = MetaProperties::new(cluster_id, node_id);
        properties.write(dir)?;
        tracing::info!(cluster_id = %properties.cluster_id, dir = %dir.display(), "formatted the log directory");
        Ok(properties)
    }

    fn check(
        &self,
        dir: &Path,
        node_id: BrokerId,
        cluster_id: Option<&str>,
    ) -> Result<(), MetaPropertiesError> {
        let path = dir.join(FILE_NAME);
        if self.node_id != node_id {
            return Err(MetaPropertiesError::NodeIdMismatch {
                path,
                stored: self.node_id.0,
                configured: node_id.0,
            });
        }
        match cluster_id {
            Some(configured) if configured != self.cluster_id => {
                Err(MetaPropertiesError::ClusterIdMismatch {
                    path,
                    stored: self.cluster_id.clone(),
                    configured: configured.to_string(),
                })
            }
            _ => Ok(()),
        }
    }
}

/// A random Kafka Uuid as Kafka prints it: URL-safe base64 without padding, 22 characters (what
/// `kafka-storage.sh random-uuid` prints).
pub fn random_kafka_uuid() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    // 16 bytes are 128 bits: 21 whole sextets and 2 bits, padded with zeros into a 22nd.
    let bits = u128::from_be_bytes(bytes);
    (0..22)
        .map(|i| {
            let shift = 128i32 - 6 * (i + 1);
            let sextet = if shift >= 0 {
                (bits >> shift) & 63
            } else {
                (bits << -shift) & 63
            };
            ALPHABET[sextet as usize] as char
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sole_voter_formats_itself_and_a_restart_reads_the_same_id(
    ) -> Result<(), MetaPropertiesError> {
        let dir = tempfile::tempdir().map_err(|source| MetaPropertiesError::Io {
            path: PathBuf::new(),
            source,
        })?;
        let first = MetaProperties::load_or_format(dir.path(), BrokerId(1), None, true)?;
        assert!(crate::config::cluster::is_cluster_id(&first.cluster_id));
        let again = MetaProperties::load_or_format(dir.path(), BrokerId(1), None, false)?;
        assert_eq!(again, first);
        Ok(())
    }

    #[test]
    fn one_of_several_voters_needs_a_cluster_id() -> Result<(), MetaPropertiesError> {
        let dir = tempfile::tempdir().map_err(|source| MetaPropertiesError::Io {
            path: PathBuf::new(),
            source,
        })?;
        assert!(matches!(
            MetaProperties::load_or_format(dir.path(), BrokerId(2), None, false),
            Err(MetaPropertiesError::NotFormatted { .. })
        ));
        let id = "MkU3OEVBNTcwNTJENDM2Qg";
        let formatted = MetaProperties::load_or_format(dir.path(), BrokerId(2), Some(id), false)?;
        assert_eq!(formatted.cluster_id, id);
        Ok(())
    }

    #[test]
    fn a_directory_of_another_node_or_cluster_is_refused_naming_both(
    ) -> Result<(), MetaPropertiesError> {
        let dir = tempfile::tempdir().map_err(|source| MetaPropertiesError::Io {
            path: PathBuf::new(),
            source,
        })?;
        MetaProperties::format(dir.path(), "MkU3OEVBNTcwNTJENDM2Qg", BrokerId(1), false)?;
        let other_node = MetaProperties::load_or_format(dir.path(), BrokerId(2), None, true);
        let message = other_node.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("node 1") && message.contains("is 2"),
            "{message}"
        );
        let other_cluster = MetaProperties::load_or_format(
            dir.path(),
            BrokerId(1),
            Some("AAAAAAAAAAAAAAAAAAAAAA"),
            true,
        );
        let message = other_cluster
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            message.contains("MkU3OEVBNTcwNTJENDM2Qg")
                && message.contains("AAAAAAAAAAAAAAAAAAAAAA"),
            "{message}"
        );
        assert!(matches!(
            MetaProperties::format(dir.path(), "MkU3OEVBNTcwNTJENDM2Qg", BrokerId(1), false),
            Err(MetaPropertiesError::AlreadyFormatted { .. })
        ));
        assert!(
            MetaProperties::format(dir.path(), "MkU3OEVBNTcwNTJENDM2Qg", BrokerId(1), true).is_ok()
        );
        Ok(())
    }

    #[test]
    fn random_ids_look_like_kafkas() {
        let id = random_kafka_uuid();
        assert_eq!(id.len(), 22);
        assert!(crate::config::cluster::is_cluster_id(&id));
        assert_ne!(id, random_kafka_uuid());
    }
}
