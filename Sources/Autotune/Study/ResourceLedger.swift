/// Where GPU leases and port reservations live, so two runners sharing it never hand out the same GPU or port,
/// and a crashed runner's leases can be taken back. A ledger is one study database: studies with databases of
/// their own on one machine are kept apart by the host's locks around it (`HostLockedLedger` in AutotuneRunner).
///
/// Every method is atomic: it reads the current holders and writes the new one in one transaction.
public protocol ResourceLedger: Sendable {
    /// Leases `count` of the `candidates` GPU indexes on `holder.host` that nobody holds, lowest first, or
    /// returns `nil` when fewer are free now.
    ///
    /// Leases of holders on this host for which `isAlive` is false (the runner and the trial's processes are
    /// gone) are dropped first.
    func leaseGPUs(
        _ count: Int,
        among candidates: [Int],
        holder: LeaseHolder,
        isAlive: @escaping @Sendable (LeaseHolder) -> Bool
    ) async throws -> [Int]?

    /// Reserves the lowest port of `range` on `holder.host` that nobody holds and `isBindable` accepts, or
    /// returns `nil` when none is left.
    func reservePort(
        in range: ClosedRange<Int>,
        holder: LeaseHolder,
        isAlive: @escaping @Sendable (LeaseHolder) -> Bool,
        isBindable: @escaping @Sendable (Int) -> Bool
    ) async throws -> Int?

    /// Releases every GPU lease and port reservation of the holder's trial.
    func release(_ holder: LeaseHolder) async throws

    /// The GPU leases and port reservations on `host`.
    func leases(host: String) async throws -> [ResourceLease]
}

/// What a ledger hands out, given what is held: the same choice whichever database keeps the leases.
public enum LeaseChoice {
    /// The `count` lowest of `candidates` nobody holds, or `nil` when fewer are free.
    public static func gpus(_ count: Int, among candidates: [Int], held: Set<Int>) -> [Int]? {
        let free = candidates.filter { !held.contains($0) }.sorted()
        return free.count >= count ? Array(free.prefix(count)) : nil
    }

    /// The lowest port of `range` nobody holds that `isBindable` accepts, or `nil`.
    public static func port(in range: ClosedRange<Int>, held: Set<Int>, isBindable: (Int) -> Bool) -> Int? {
        range.first { !held.contains($0) && isBindable($0) }
    }
}

/// Who holds a lease: a trial of a study, run by a process on a host.
public struct LeaseHolder: Sendable, Hashable, Codable {
    /// The host.
    public var host: String
    /// The runner's process id.
    public var pid: Int32
    /// The study's name.
    public var study: String
    /// The trial's number.
    public var trial: Int
    /// When the runner's process started (``RunnerIdentity/started``), so that a later process given its pid
    /// does not keep its leases held.
    public var started: String?

    /// Creates a holder.
    public init(host: String, pid: Int32, study: String, trial: Int, started: String? = nil) {
        self.host = host
        self.pid = pid
        self.study = study
        self.trial = trial
        self.started = started
    }
}

/// One GPU lease or port reservation.
public struct ResourceLease: Sendable, Hashable, Codable {
    /// What is held.
    public enum Resource: Sendable, Hashable, Codable {
        /// A GPU by index.
        case gpu(Int)
        /// A TCP port.
        case port(Int)
    }

    /// What is held.
    public var resource: Resource
    /// By whom.
    public var holder: LeaseHolder

    /// Creates a lease record.
    public init(resource: Resource, holder: LeaseHolder) {
        self.resource = resource
        self.holder = holder
    }
}
