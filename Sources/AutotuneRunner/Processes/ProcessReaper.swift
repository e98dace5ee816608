public import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Records the process group a trial started, and ends it when the runner that started it died.
///
/// The record holds the leader's pid and its start time from `/proc/PID/stat`; a group is only killed when a
/// live process with that pid has the same start time, so a pid reused by an unrelated program is never hit.
public enum ProcessReaper {
    /// The file in a trial's directory that names its process group.
    public static let recordName = "process-group"

    /// Writes the record for `pid` into `directory`.
    public static func record(pid: Int32, in directory: URL) {
        let text = "\(pid) \(startTime(of: pid) ?? 0)\n"
        try? Data(text.utf8).write(to: directory.appendingPathComponent(recordName), options: .atomic)
    }

    /// Kills the process group recorded in `directory` if it is still alive; returns whether it did.
    @discardableResult
    public static func reap(in directory: URL) -> Bool {
        guard let text = try? String(contentsOf: directory.appendingPathComponent(recordName), encoding: .utf8)
        else { return false }
        let fields = text.split(whereSeparator: \.isWhitespace)
        guard fields.count == 2, let pid = Int32(fields[0]), let started = UInt64(fields[1]), pid > 1 else {
            return false
        }
        // The leader may be gone while its group lives on; then only the group id can be checked, via any member.
        if let current = startTime(of: pid), current != started { return false }
        return kill(-pid, SIGKILL) == 0
    }

    /// The start time of a process in clock ticks since boot (field 22 of `/proc/PID/stat`), or `nil`.
    static func startTime(of pid: Int32) -> UInt64? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // Fields after the command name (which may hold spaces) start at field 3.
        let rest = stat[stat.index(after: close)...].split(separator: " ")
        return rest.count > 19 ? UInt64(rest[19]) : nil
    }
}
