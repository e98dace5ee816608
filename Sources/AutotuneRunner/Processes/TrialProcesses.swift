public import Autotune
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Finds and ends a trial's processes by the token every one of them carries in its environment.
///
/// Each program a trial starts gets `AUTOTUNE_TRIAL_TOKEN=<trial token>/<program>` in its environment before it
/// exists, and its children inherit it, also those that leave the process group with `setsid`. So a trial's
/// processes can be found through `/proc/PID/environ` from the moment they exist: after the runner was killed
/// between a spawn and recording the process group, and after a grandchild escaped the group. A program that
/// clears its own environment (`env -i`) is not found this way; the process group still catches it while it
/// stays in the group.
public enum TrialProcesses {
    /// The environment variable that carries the token.
    public static let variable = "AUTOTUNE_TRIAL_TOKEN"

    /// The token of a trial: short, and the same wherever it is computed from the same study in the same
    /// store (`storeLocation` tells two databases' studies of the same name apart).
    public static func token(storeLocation: String, study: String, trial: Int) -> String {
        // FNV-1a, 64 bits: a stable hash (Swift's `Hasher` is seeded per process).
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "\(storeLocation)\u{0}\(study)\u{0}\(trial)".utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return "at" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// The variable's value for one program of a trial.
    public static func value(trial token: String, program: String) -> String { "\(token)/\(program)" }

    /// The live processes whose environment carries `value` (`exact`), or any value of the trial `token`
    /// (a prefix), not counting this process; zombies, having no environment left, are not listed.
    public static func find(token: String, exact: Bool = false) -> [Int32] {
        let needle = Array("\(variable)=\(token)\(exact ? "" : "/")".utf8)
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        let me = getpid()
        var found: [Int32] = []
        for entry in entries {
            guard let pid = Int32(entry), pid != me, let environment = environ(of: pid) else { continue }
            if carries(environment, needle, exact: exact) { found.append(pid) }
        }
        return found
    }

    /// Whether any live process carries the trial's token.
    public static func exist(token: String) -> Bool { !find(token: token).isEmpty }

    /// Sends SIGKILL to every process that carries the token (exactly `value` when `exact`), again until none is
    /// left (a process may fork while it is being killed); returns whether there were any.
    @discardableResult
    public static func kill(token: String, exact: Bool = false) -> Bool {
        var any = false
        for _ in 0..<50 {
            let pids = find(token: token, exact: exact)
            if pids.isEmpty { return any }
            any = true
            for pid in pids { signalKill(pid) }
            usleep(2_000)
        }
        return any
    }

    /// Whether a lease's holder still needs what it holds: its runner is alive, or a process of its trial (in the
    /// store at `storeLocation`) still runs on this machine. A dead runner's experiments may run on, and their GPUs
    /// and ports stay theirs until they end.
    public static func leaseHolderIsAlive(storeLocation: String) -> @Sendable (LeaseHolder) -> Bool {
        { holder in
            holder.runnerIsAlive
                || exist(token: token(storeLocation: storeLocation, study: holder.study, trial: holder.trial))
        }
    }

    /// The raw environment block of `pid`, or `nil` when it cannot be read (gone, another user's).
    private static func environ(of pid: Int32) -> [UInt8]? {
        let descriptor = open("/proc/\(pid)/environ", O_RDONLY)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            if count <= 0 { break }
            bytes += buffer[0..<count]
        }
        return bytes
    }

    /// Whether one of the NUL-separated entries of `environment` is `needle` (exact) or starts with it.
    private static func carries(_ environment: [UInt8], _ needle: [UInt8], exact: Bool) -> Bool {
        var start = 0
        while start < environment.count {
            let end = environment[start...].firstIndex(of: 0) ?? environment.count
            let entry = environment[start..<end]
            if exact ? entry.elementsEqual(needle) : entry.starts(with: needle) { return true }
            start = end + 1
        }
        return false
    }
}

/// SIGKILL to one process (a free function: inside ``TrialProcesses`` the name `kill` is its own).
private func signalKill(_ pid: Int32) {
    _ = kill(pid, SIGKILL)
}
