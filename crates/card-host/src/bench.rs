//! Measurements of the host that bound the card's speed. A durable writing command costs at
//! least one `fdatasync`; [`fsync_rate`] measures how many of those the disk under a card
//! directory does per second, so a benchmark can print the card's rate next to its bound.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::HostError;

/// Writes one sealed-page-sized block and `fdatasync`s it, repeatedly, for about `duration`
/// (at least once), in a scratch file in `dir` that is removed afterwards. Returns the number
/// of write + fdatasync pairs per second.
pub fn fsync_rate(dir: &Path, duration: Duration) -> Result<f64, HostError> {
    let path = dir.join(format!(".cardwright-fsync-bench-{}", std::process::id()));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(HostError::io("create", &path))?;
    let result = (|| {
        let block = [0x5Au8; 548];
        // The first write allocates the block; allocation is not what a card pays per command.
        file.write_all_at(&block, 0)?;
        file.sync_all()?;
        let start = Instant::now();
        let mut count = 0u64;
        loop {
            file.write_all_at(&block, 0)?;
            file.sync_data()?;
            count += 1;
            let elapsed = start.elapsed();
            if elapsed >= duration {
                return Ok(count as f64 / elapsed.as_secs_f64());
            }
        }
    })()
    .map_err(HostError::io("write and fdatasync", &path));
    let removed = std::fs::remove_file(&path).map_err(HostError::io("remove", &path));
    let rate = result?;
    removed?;
    Ok(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_something_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let rate = fsync_rate(dir.path(), Duration::ZERO).unwrap();
        assert!(rate > 0.0 && rate.is_finite());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_file() {
        let err = fsync_rate(Path::new("/nonexistent/cardwright"), Duration::ZERO).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/cardwright"), "{err}");
    }
}
