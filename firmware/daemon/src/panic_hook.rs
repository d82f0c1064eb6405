//! What a panic leaves behind.
//!
//! The release build aborts on panic, and an aborting PID 1 takes the kernel down with it
//! ("Attempted to kill init") with nothing in Tandem's log. The hook installed here writes the
//! panic (message, location, thread) to the log ring and the console, gives the console a
//! moment to drain, and then, as PID 1, syncs and reboots cleanly; under `tandem run` it lets
//! the process abort as usual after logging. A hang instead of a panic is the watchdog's job.

use std::time::Duration;

use crate::console_writer;
use crate::init::{self, PowerAction};
use crate::logring::Log;

/// How long the hook waits for the console to show the panic before rebooting.
const DRAIN: Duration = Duration::from_secs(2);

/// Installs the hook. `reboot` is true for PID 1.
pub fn install(log: Log, reboot: bool) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let location = info
            .location()
            .map_or_else(|| "unknown place".to_owned(), ToString::to_string);
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_owned());
        log.line(format!(
            "PANIC in thread {} at {location}: {message}{}",
            thread.name().unwrap_or("unnamed"),
            if reboot {
                "; rebooting cleanly (this is a bug: please report the lines above)"
            } else {
                ""
            }
        ));
        console_writer::console().drain(DRAIN);
        if reboot {
            let errno = init::power(PowerAction::Reboot);
            log.line(format!(
                "reboot(2) refused after a panic: {errno}; waiting for the watchdog"
            ));
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        previous(info);
    }));
}
