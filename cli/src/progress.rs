//! A progress bar on stderr, shown only when stderr is a terminal so that scripts, CI logs
//! and tests see nothing but the result.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar over the bytes of a log, or nothing when stderr is not a terminal.
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// A bar over `len` bytes, or a spinner when the length is unknown (an HTTP stream).
    pub fn new(len: Option<u64>, label: &str) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress(None);
        }

        let bar = match len {
            Some(len) => {
                let style = ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {bytes}/{total_bytes} {msg} ({eta})",
                )
                .expect("the template is valid")
                .progress_chars("=> ");
                ProgressBar::new(len).with_style(style)
            }
            None => {
                let style = ProgressStyle::with_template("{prefix} {spinner} {bytes} {msg}")
                    .expect("the template is valid");
                ProgressBar::new_spinner().with_style(style)
            }
        };
        bar.set_prefix(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress(Some(bar))
    }

    /// Moves the bar to `bytes` read, with the height verified so far.
    pub fn update(&self, bytes: u64, height: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(bytes);
            bar.set_message(format!("height {height}"));
        }
    }

    /// Removes the bar before the result is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
