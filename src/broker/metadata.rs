//! The broker's own files, under `<data>/__metadata/` (not a `<topic>-<partition>` name, so no
//! tool mistakes it for a partition):
//! - `topics/<topic>.properties`: each topic's configuration, Kafka-named (see `TopicConfig`);
//! - `producer-id-block`: the first producer id not yet handed out, advanced a block at a time.

use std::fs;
use std::path::{Path, PathBuf};

use super::{BrokerError, TopicConfig};
use crate::log::{validate_topic_name, write_file_atomic};

pub(crate) const METADATA_DIR: &str = "__metadata";
const TOPICS_DIR: &str = "topics";
const PRODUCER_ID_FILE: &str = "producer-id-block";
/// Producer ids reserved on disk per write.
pub(crate) const PRODUCER_ID_BLOCK: i64 = 1000;
/// Suffix of a partition directory being removed with its topic.
pub(crate) const DELETE_SUFFIX: &str = "-delete";

#[derive(Debug)]
pub(crate) struct Metadata {
    topics_dir: PathBuf,
    producer_id_path: PathBuf,
}

impl Metadata {
    pub(crate) fn open(data_dir: &Path) -> Result<Metadata, BrokerError> {
        let topics_dir = data_dir.join(METADATA_DIR).join(TOPICS_DIR);
        fs::create_dir_all(&topics_dir).map_err(BrokerError::io(&topics_dir))?;
        Ok(Metadata {
            topics_dir,
            producer_id_path: data_dir.join(METADATA_DIR).join(PRODUCER_ID_FILE),
        })
    }

    /// Every stored topic and its configuration.
    pub(crate) fn load_topics(&self) -> Result<Vec<(String, TopicConfig)>, BrokerError> {
        let mut topics = Vec::new();
        for entry in fs::read_dir(&self.topics_dir).map_err(BrokerError::io(&self.topics_dir))? {
            let path = entry.map_err(BrokerError::io(&self.topics_dir))?.path();
            let Some(name) = path
                .file_name()
                .and_then(|name| name.to_str())
                .and_then(|name| name.strip_suffix(".properties"))
            else {
                continue;
            };
            validate_topic_name(name)?;
            let text = fs::read_to_string(&path).map_err(BrokerError::io(&path))?;
            topics.push((name.to_owned(), TopicConfig::from_properties(&text)?));
        }
        topics.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(topics)
    }

    pub(crate) fn store_topic(&self, name: &str, config: &TopicConfig) -> Result<(), BrokerError> {
        let path = self.topic_path(name);
        write_file_atomic(&path, config.to_properties().as_bytes()).map_err(BrokerError::io(&path))
    }

    pub(crate) fn remove_topic(&self, name: &str) -> Result<(), BrokerError> {
        let path = self.topic_path(name);
        fs::remove_file(&path).map_err(BrokerError::io(&path))?;
        fs::File::open(&self.topics_dir)
            .and_then(|dir| dir.sync_all())
            .map_err(BrokerError::io(&self.topics_dir))
    }

    fn topic_path(&self, name: &str) -> PathBuf {
        self.topics_dir.join(format!("{name}.properties"))
    }

    /// Reserves the next block of producer ids on disk and returns its first id.
    pub(crate) fn reserve_producer_ids(&self) -> Result<i64, BrokerError> {
        let path = &self.producer_id_path;
        let next = match fs::read_to_string(path) {
            Ok(text) => text
                .trim()
                .parse::<i64>()
                .map_err(|_| BrokerError::InvalidProperty { line: text.clone() })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
            Err(error) => return Err(BrokerError::io(path)(error)),
        };
        write_file_atomic(path, format!("{}\n", next + PRODUCER_ID_BLOCK).as_bytes())
            .map_err(BrokerError::io(path))?;
        Ok(next)
    }
}

/// Removes partition directories left by an interrupted topic deletion.
pub(crate) fn remove_deleted_dirs(data_dir: &Path) -> Result<(), BrokerError> {
    for entry in fs::read_dir(data_dir).map_err(BrokerError::io(data_dir))? {
        let path = entry.map_err(BrokerError::io(data_dir))?.path();
        if path.is_dir()
            && path
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.ends_with(DELETE_SUFFIX))
        {
            fs::remove_dir_all(&path).map_err(BrokerError::io(&path))?;
        }
    }
    Ok(())
}
