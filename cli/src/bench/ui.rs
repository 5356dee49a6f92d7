//! What the bench is doing, as a spinner on stderr when stderr is a terminal; nothing
//! otherwise, so that scripts and logs see only the table.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// The current stage's spinner, if shown.
pub struct Stage(Option<ProgressBar>);

impl Stage {
    /// A spinner on a terminal, or nothing.
    pub fn new() -> Stage {
        if !std::io::stderr().is_terminal() {
            return Stage(None);
        }
        let style = ProgressStyle::with_template("{spinner} [{elapsed}] {msg}")
            .expect("the template is valid");
        let bar = ProgressBar::new_spinner().with_style(style);
        bar.enable_steady_tick(Duration::from_millis(200));
        Stage(Some(bar))
    }

    /// Shows what is being done now.
    pub fn say(&self, message: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(message.to_string());
        }
    }

    /// Removes the spinner before the table is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
