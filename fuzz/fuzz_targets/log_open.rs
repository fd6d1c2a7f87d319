//! Arbitrary partition directories: `Log::open` on them returns a log or an error, and whatever it
//! opens can be read, searched by time, appended to and closed without a panic.
//!
//! Input: byte 0 bit 0 starts from the template log's files (else from an empty directory),
//! bit 1 adds the clean-shutdown marker. Then commands, each `[file][op][len][data; len]`:
//! `file` picks one of `FILE_NAMES`; `op` 0 replaces the file with `data`, 1 overwrites `data` at
//! the position in its first two bytes, 2 truncates the file to `len * 16` bytes, 3 deletes it,
//! 4 rewrites the CRC of every batch in it (so patched batches are valid, and reach recovery's
//! checks of offsets and epochs instead of stopping at the checksum).

#![no_main]

use libfuzzer_sys::fuzz_target;
use logbus::log::Log;
use logbus_fuzz::{
    config, exercise, fix_crcs, scratch, template, write_dir, CLEAN_MARKER, FILE_NAMES,
};

/// Files stay small so each run is fast.
const MAX_FILE_BYTES: usize = 64 << 10;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut commands)) = data.split_first() else {
        return;
    };
    let mut files: Vec<(String, Vec<u8>)> = if flags & 1 != 0 {
        template()
            .iter()
            .filter(|(name, _)| name != CLEAN_MARKER)
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    if flags & 2 != 0 {
        files.push((CLEAN_MARKER.to_owned(), Vec::new()));
    }
    while let [file, op, len, rest @ ..] = commands {
        let len = usize::from(*len).min(rest.len());
        let (payload, next) = rest.split_at(len);
        apply(
            &mut files,
            FILE_NAMES[usize::from(*file) % FILE_NAMES.len()],
            *op,
            len,
            payload,
        );
        commands = next;
    }
    let root = scratch();
    let dir = write_dir(root.path(), &files);
    if let Ok(log) = Log::open(&dir, config()) {
        exercise(&log);
        let _ = log.close();
    }
});

fn apply(files: &mut Vec<(String, Vec<u8>)>, name: &str, op: u8, len: usize, payload: &[u8]) {
    let at = match files.iter().position(|(n, _)| n == name) {
        Some(at) => at,
        None => {
            files.push((name.to_owned(), Vec::new()));
            files.len() - 1
        }
    };
    let contents = &mut files[at].1;
    match op % 5 {
        0 => *contents = payload.to_vec(),
        1 => {
            let [high, low, patch @ ..] = payload else {
                return;
            };
            let position = usize::from(u16::from_be_bytes([*high, *low]));
            let end = (position + patch.len()).min(MAX_FILE_BYTES);
            if contents.len() < end {
                contents.resize(end, 0);
            }
            let patch_len = end.saturating_sub(position);
            if patch_len > 0 {
                contents[position..end].copy_from_slice(&patch[..patch_len]);
            }
        }
        2 => contents.truncate(len * 16),
        3 => {
            files.remove(at);
        }
        _ => fix_crcs(contents),
    }
}
