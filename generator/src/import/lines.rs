//! The line loop of the line-oriented imports (Azure and BurstGPT CSV, Mooncake and
//! prompt JSONL): one bounded read of the file ([`formats::InputFile`]: size and line
//! limits, byte-order mark, `\r\n`), blank lines skipped, and every error naming the
//! file and the line. Written once so that every importer reads a file the same way.

use std::io::Read;

use formats::InputFile;

use crate::error::{GenError, Result};

/// Calls `each(line number, line)` for every non-blank line of `input`; an `Err(message)`
/// from it becomes the error `path:line: message`. Returns whether any line was given.
pub(crate) fn for_each_line<R: Read>(
    input: &mut InputFile<R>,
    mut each: impl FnMut(usize, &str) -> std::result::Result<(), String>,
) -> Result<bool> {
    let mut any = false;
    while let Some((n, line)) = input.next_line()? {
        if line.trim().is_empty() {
            continue;
        }
        any = true;
        if let Err(message) = each(n, line) {
            return Err(GenError::BadRow {
                path: input.path().to_path_buf(),
                line: n,
                message,
            });
        }
    }
    Ok(any)
}

/// The error of an input without a single non-blank line.
pub(crate) fn empty_file<R: Read>(input: &InputFile<R>, expected: &str) -> GenError {
    GenError::BadRow {
        path: input.path().to_path_buf(),
        line: 1,
        message: format!("empty file: expected {expected}"),
    }
}
