//! Operating-system helpers: open-file limit, allocator settings, CPU time, timer slack,
//! host name.

use std::time::Duration;

/// Keeps the C allocator from handing memory back to the kernel and taking it again.
///
/// hyper grows each connection's read buffer up to ~400 KB while a stream is fast and
/// allocates a new one when the old is still referenced; with glibc's defaults such
/// blocks are `mmap`ed and unmapped each time, and every first touch of a fresh page is a
/// page fault: 16% of the client's samples in a profile of bulk streaming. Serving
/// blocks up to 32 MiB from the heap and trimming it only above 256 MiB of free top
/// keeps those pages mapped and reused (measured: 0.74-0.81 -> 0.56-0.74 us of client CPU
/// per streamed event). Process-wide, like the open-file limit; glibc only (other C
/// libraries keep their defaults).
pub(crate) fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's allocation thresholds; any value is valid.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

/// Raises the soft open-file limit to the hard limit. Returns a note for the user when
/// the limit stays below `wanted` (each in-flight request holds one socket).
pub(crate) fn raise_nofile(wanted: u64) -> Option<String> {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Some("could not read the open-file limit (RLIMIT_NOFILE)".into());
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
        #[allow(clippy::unnecessary_cast)]
        let cur = lim.rlim_cur as u64;
        if cur < wanted {
            return Some(format!(
                "open-file limit is {cur} (could not raise it further) but up to {wanted} \
                 connections may be open at once: requests beyond it will fail with \
                 connect_error; raise it with `ulimit -n` or --concurrency"
            ));
        }
    }
    None
}

/// The soft open-file limit (after [`raise_nofile`], the most sockets this process can
/// hold), or `None` when it cannot be read or is unlimited.
pub(crate) fn open_file_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit with a valid pointer to a local struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast)]
    Some(lim.rlim_cur as u64).filter(|&l| lim.rlim_cur != libc::RLIM_INFINITY && l > 0)
}

/// User + system CPU time of this process, or of the calling thread.
pub(crate) fn cpu_time(thread: bool) -> Duration {
    // SAFETY: getrusage fills a local struct.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        #[cfg(target_os = "linux")]
        let who = if thread {
            libc::RUSAGE_THREAD
        } else {
            libc::RUSAGE_SELF
        };
        #[cfg(not(target_os = "linux"))]
        let who = {
            let _ = thread;
            libc::RUSAGE_SELF
        };
        if libc::getrusage(who, &mut ru) != 0 {
            return Duration::ZERO;
        }
        let tv = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
        };
        tv(ru.ru_utime) + tv(ru.ru_stime)
    }
}

/// Makes the calling thread's sleeps end as close to their deadline as the kernel can
/// (Linux's default timer slack is 50 us).
pub(crate) fn precise_timers() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_TIMERSLACK takes an integer argument.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

/// Gives the calling thread real-time priority (SCHED_FIFO, lowest level) where allowed,
/// so its wake-ups from sleep are not queued behind ordinary processes. Returns whether
/// it worked (it needs CAP_SYS_NICE or an RLIMIT_RTPRIO allowance).
pub(crate) fn realtime_thread() -> bool {
    #[cfg(target_os = "linux")]
    // SAFETY: sched_setscheduler on the calling thread (0) with a valid param struct.
    unsafe {
        let param = libc::sched_param { sched_priority: 1 };
        libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) == 0
    }
    #[cfg(not(target_os = "linux"))]
    false
}

pub(crate) fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
