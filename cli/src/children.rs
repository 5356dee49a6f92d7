//! Child processes (the nodes of `tally devnet` and `tally bench`) that never outlive the
//! command that started them.
//!
//! Three guards, because any one alone leaves a gap: a [`Child`] wrapper that kills its
//! process when dropped (the command ends or fails); for commands that want it, a
//! SIGINT/SIGTERM handler that kills every registered child before exiting
//! ([`kill_all_on_interrupt`]); and, in each child, `PR_SET_PDEATHSIG` so that the kernel
//! signals it if the command dies without running either (SIGKILL, a crash).

use std::process::{Command, ExitStatus};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use std::os::unix::process::CommandExt;

/// Process ids of the children alive now, for the signal handler.
static ALIVE: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// A running child, killed when dropped.
pub struct Child {
    inner: Option<std::process::Child>,
    pid: u32,
}

impl Child {
    /// Spawns `command` as a guarded child that the kernel sends `parent_death` (SIGTERM to
    /// let it stop cleanly, SIGKILL to end it at once) if this process dies.
    ///
    /// Must be called from the thread that lives as long as the command (the main thread):
    /// the kernel's parent-death signal follows the thread that spawned the child.
    pub fn spawn(command: &mut Command, parent_death: libc::c_int) -> std::io::Result<Child> {
        // SAFETY: the closure runs in the child between fork and exec and only calls
        // prctl and getppid, which are async-signal-safe; it touches no memory of the parent.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, parent_death) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before prctl took effect.
                if libc::getppid() == 1 {
                    return Err(std::io::Error::other("the parent process exited"));
                }
                Ok(())
            });
        }
        let inner = command.spawn()?;
        let pid = inner.id();
        lock().push(pid);
        Ok(Child {
            inner: Some(inner),
            pid,
        })
    }

    /// The child's process id, as `/proc` names it.
    pub fn pid(&self) -> String {
        self.pid.to_string()
    }

    /// Whether the child has exited, and how.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.inner.as_mut()?.try_wait().ok().flatten()
    }

    /// Sends SIGTERM, the signal a node answers by finishing its write and exiting 0.
    pub fn terminate(&mut self) {
        // Once reaped, the pid may name another process: signal only a child still running.
        let running = self
            .inner
            .as_mut()
            .is_some_and(|inner| matches!(inner.try_wait(), Ok(None)));
        if !running {
            return;
        }
        // SAFETY: kill only sends a signal to our own child, which `try_wait` just found
        // running, so its pid has not been reaped and reused.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
    }

    /// Asks the child to stop (SIGTERM) and waits up to `patience`, then kills it.
    pub fn stop(&mut self, patience: Duration) -> Option<ExitStatus> {
        self.terminate();
        let mut inner = self.inner.take()?;
        let deadline = Instant::now() + patience;
        let status = loop {
            match inner.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = inner.kill();
                    break inner.wait().ok();
                }
            }
        };
        forget(self.pid);
        status
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Some(mut inner) = self.inner.take() {
            let _ = inner.kill();
            let _ = inner.wait();
            forget(self.pid);
        }
    }
}

fn lock() -> std::sync::MutexGuard<'static, Vec<u32>> {
    ALIVE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn forget(pid: u32) {
    lock().retain(|alive| *alive != pid);
}

/// On SIGINT or SIGTERM, kills every live child and exits with 130: for commands whose
/// children have nothing to finish (the bench's).
pub fn kill_all_on_interrupt() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a one-thread runtime for signals starts");
        std::thread::spawn(move || {
            runtime.block_on(async {
                use tokio::signal::unix::{SignalKind, signal};
                let mut interrupt = signal(SignalKind::interrupt()).expect("SIGINT handler");
                let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler");
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            });
            for pid in lock().iter() {
                // SAFETY: sends a signal to a child of ours that has not been reaped.
                unsafe {
                    libc::kill(*pid as libc::pid_t, libc::SIGKILL);
                }
            }
            eprintln!("error: interrupted; every process this command started was killed");
            std::process::exit(130);
        });
    });
}
