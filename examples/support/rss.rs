//! The benchmarks' memory figure: the process's peak resident memory, as Linux counts it.

/// `VmHWM` of `/proc/self/status`, in KiB (0 where there is no such file).
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
