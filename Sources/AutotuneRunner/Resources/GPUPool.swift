public import Autotune
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Hands out GPUs to trials, first come first served, through leases in a ``ResourceLedger`` so that several
/// runners on one machine never share a GPU.
///
/// A trial that asks for more GPUs than the pool has fails at once; one that asks for more than are free waits
/// its turn, and no later request overtakes it, so a large request is not starved by small ones.
public actor GPUPool {
    /// The GPUs this runner may use.
    public let gpus: [GPU]
    private let ledger: any ResourceLedger
    private let pollInterval: Duration
    private let holderIsAlive: @Sendable (LeaseHolder) -> Bool
    private var queue: [Int] = []
    private var nextTicket = 0

    /// Creates a pool over `gpus`, leasing through `ledger`; waiting requests retry every `pollInterval`, since
    /// another process may free a GPU at any time. A lease is taken back only from a holder `holderIsAlive`
    /// says is gone (by default: its runner's process is).
    public init(
        gpus: [GPU],
        ledger: any ResourceLedger,
        pollInterval: Duration = .milliseconds(50),
        holderIsAlive: @escaping @Sendable (LeaseHolder) -> Bool = { $0.runnerIsAlive }
    ) {
        self.gpus = gpus
        self.ledger = ledger
        self.pollInterval = pollInterval
        self.holderIsAlive = holderIsAlive
    }

    /// How many requests wait for GPUs now, in arrival order behind the first.
    public var waitingCount: Int { queue.count }

    /// Leases `count` GPUs with at least `minimumFreeMemoryMiB` free (when known), waiting for them if needed.
    ///
    /// Throws ``ResourceError`` when the pool can never satisfy the request, and `CancellationError` when the
    /// task is cancelled while waiting.
    public func acquire(_ count: Int, minimumFreeMemoryMiB: Double? = nil, holder: LeaseHolder) async throws -> [Int] {
        guard count > 0 else { return [] }
        let eligible = gpus.filter { gpu in
            guard let minimum = minimumFreeMemoryMiB, let free = gpu.memoryFreeMiB else { return true }
            return free >= minimum
        }.map(\.index)
        guard count <= eligible.count else {
            let memory = minimumFreeMemoryMiB.map { " with \(Int($0)) MiB free" } ?? ""
            throw ResourceError(
                "the trial needs \(count) GPU\(count == 1 ? "" : "s")\(memory), but the pool has \(eligible.count) (\(gpus.map { String($0.index) }.joined(separator: ",")))"
            )
        }
        let ticket = nextTicket
        nextTicket += 1
        queue.append(ticket)
        defer { queue.removeAll { $0 == ticket } }
        while true {
            try Task.checkCancellation()
            if queue.first == ticket,
                let leased = try await ledger.leaseGPUs(count, among: eligible, holder: holder, isAlive: holderIsAlive)
            {
                return leased
            }
            try await Task.sleep(for: pollInterval)
        }
    }
}

/// A resource request that cannot be met.
public struct ResourceError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong.
    public var message: String

    /// Creates an error.
    public init(_ message: String) { self.message = message }

    /// The message.
    public var description: String { message }
}

/// Whether a process id is alive on this host: a signal 0 reaches it (or it exists but is not ours), and it is
/// not a zombie. A killed runner whose parent never reaps it (an orphan under an init that does not reap, or
/// a container's pid 1) stays a zombie, and its study and leases must count as free.
///
/// With `started` (what ``processStartMark(_:)`` said of the process when it was recorded), a process that has
/// the pid but started at another moment is a later one given a recycled pid: the recorded one is gone. Pids
/// wrap (at 32768 by default), so after a crash and a long wait a stale runner's pid is often someone else's.
@Sendable public func processIsAlive(_ pid: Int32, started: String? = nil) -> Bool {
    guard kill(pid, 0) == 0 || errno == EPERM else { return false }
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
    guard processState(stat: stat) != "Z" else { return false }
    guard let started, let now = startMark(stat: stat) else { return true }
    return now == started
}

extension LeaseHolder {
    /// Whether the holder's runner process lives on this machine: its pid, with the start it leased with.
    public var runnerIsAlive: Bool { processIsAlive(pid, started: started) }
}

/// When the process `pid` started, as a mark that names it among all processes this machine ever ran: the
/// boot's id and the clock tick of its start (field 22 of `/proc/PID/stat`). `nil` when the kernel does not
/// say (not Linux, or the process is gone).
public func processStartMark(_ pid: Int32) -> String? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return nil }
    return startMark(stat: stat)
}

/// The start mark of a `/proc/PID/stat` line: the boot's id, then the start tick.
public func startMark(stat: String) -> String? {
    guard let boot = bootID, let close = stat.lastIndex(of: ")") else { return nil }
    // Fields after the command name begin at field 3 (the state), so field 22 is the 20th of them.
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 19, UInt64(fields[19]) != nil else { return nil }
    return "\(boot):\(fields[19])"
}

/// This boot's id: a process started in another boot is another process, whatever its tick.
private let bootID: String? = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))
    .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.flatMap { $0.isEmpty ? nil : $0 }

/// The state letter of a `/proc/PID/stat` line (`R`, `S`, `Z`…): the field after the command name, which may
/// itself hold spaces and parentheses, so it is found after the last `)`.
public func processState(stat: String) -> String? {
    guard let close = stat.lastIndex(of: ")") else { return nil }
    return stat[stat.index(after: close)...].split(separator: " ").first.map(String.init)
}

/// Whether a TCP port can be bound on all interfaces now: another program may hold it outside any ledger.
@Sendable func portIsBindable(_ port: Int) -> Bool {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return false }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = INADDR_ANY
    return withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
    }
}

/// Reserves host ports for trials in a range, atomically through a ``ResourceLedger``.
public struct PortAllocator: Sendable {
    /// The ports handed out.
    public var range: ClosedRange<Int>
    private let ledger: any ResourceLedger
    private let holderIsAlive: @Sendable (LeaseHolder) -> Bool

    /// Creates an allocator; a reservation is taken back only from a holder `holderIsAlive` says is gone.
    public init(
        range: ClosedRange<Int>,
        ledger: any ResourceLedger,
        holderIsAlive: @escaping @Sendable (LeaseHolder) -> Bool = { $0.runnerIsAlive }
    ) {
        self.range = range
        self.ledger = ledger
        self.holderIsAlive = holderIsAlive
    }

    /// A port of the range that no trial holds and that can be bound now.
    public func reserve(for holder: LeaseHolder) async throws -> Int {
        guard
            let port = try await ledger.reservePort(
                in: range,
                holder: holder,
                isAlive: holderIsAlive,
                isBindable: portIsBindable
            )
        else {
            throw ResourceError(
                "no free port in \(range.lowerBound)-\(range.upperBound): every port is reserved or in use (widen resources.ports)"
            )
        }
        return port
    }
}
