public import Autotune
public import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Locks, one file per GPU and port, in a directory every `autotune` process on the host shares: what a
/// ``ResourceLedger`` cannot see, since a ledger is one study's database, and two studies with databases of their
/// own on one machine would otherwise both lease GPU 0 and both reserve the first free port.
///
/// A lock is `flock(2)` on the file, taken without waiting and held by the runner's process for the lease's
/// life: the kernel lets go of it when the process ends, however it ends, so a killed runner leaves no lock
/// behind. It leaves its trial's token in the file, though, and while a process of that trial runs on, the lock
/// is refused (``tryLock(_:for:token:)``). Files are never removed (removing a lock file races with a process
/// opening it); a host keeps one small file per GPU and port it ever handed out.
public final class HostLocks: Sendable {
    /// The shared directory.
    public let directory: URL
    /// The locks each holder has, by name. A holder is known with its trial token: two studies of one name in
    /// two databases, run by one process, are two holders of the same trial number.
    private let held = Locked<[Owner: [String: Lock]]>([:])

    /// Locks in `directory`, made (open to every user, sticky like `/tmp`) on the first lock.
    public init(directory: URL) { self.directory = directory }

    /// The directory `AUTOTUNE_LOCK_DIR` names, else `/tmp/autotune-locks`: every runner on the host must use the
    /// same one, and a per-user or per-job temporary directory (`TMPDIR`, Slurm's private `/tmp`) would split them.
    public static var defaultDirectory: URL {
        let named = ProcessInfo.processInfo.environment["AUTOTUNE_LOCK_DIR"].flatMap { $0.isEmpty ? nil : $0 }
        return URL(fileURLWithPath: named ?? "/tmp/autotune-locks", isDirectory: true)
    }

    /// The locks of this host, in ``defaultDirectory``: one instance serves every study in the process.
    public static let host = HostLocks(directory: defaultDirectory)

    /// The lock file of a GPU: its UUID when known (the same GPU whatever `CUDA_VISIBLE_DEVICES` numbers it in a
    /// container), else its index.
    public static func name(of gpu: GPU) -> String {
        guard let uuid = gpu.uuid, !uuid.isEmpty else { return "gpu-index-\(gpu.index)" }
        let safe = uuid.unicodeScalars.map {
            CharacterSet.alphanumerics.contains($0) || $0 == "-" ? Character($0) : "_"
        }
        return "gpu-" + String(safe)
    }

    /// The lock file of a TCP port.
    public static func name(ofPort port: Int) -> String { "port-\(port)" }

    /// Takes the lock `name` for `holder` without waiting: `true` when it now holds it (or already did), `false`
    /// when another holder does, in this process or any other on the host.
    ///
    /// The holder and `token` (its trial token, ``TrialProcesses``) are written into the file while the lock is
    /// held (``Record``) and cleared when it is let go. A runner that is killed leaves its record behind, and its
    /// trial's processes may run on (they live in sessions of their own): while any process carries the token
    /// left, the lock is refused as if held, as the ledger refuses a dead runner's lease while its trial runs.
    ///
    /// Throws ``ResourceError`` when the lock file cannot be opened (the directory is not writable, say).
    public func tryLock(_ name: String, for holder: LeaseHolder, token: String? = nil) throws -> Bool {
        let owner = Owner(holder: holder, token: token)
        if held.withLock({ $0[owner]?[name] != nil }) { return true }
        let path = try prepareDirectory().appendingPathComponent(name + ".lock").path
        var descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o666)
        // A file another user made without write access for all can still be locked (flock needs no write
        // access); the token is then not recorded.
        let writable = descriptor >= 0
        if !writable, errno == EACCES { descriptor = open(path, O_RDONLY | O_CLOEXEC) }
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno))
            throw ResourceError(
                "cannot open the host lock file \(path): \(reason) (AUTOTUNE_LOCK_DIR names a directory every autotune process on this host can write)"
            )
        }
        // Every user's runners lock the same files: open them to all, past the umask (only the owner can).
        _ = fchmod(descriptor, 0o666)
        var status: Int32
        repeat { status = flock(descriptor, LOCK_EX | LOCK_NB) } while status != 0 && errno == EINTR
        guard status == 0 else {
            let code = errno
            close(descriptor)
            if code == EWOULDBLOCK { return false }
            throw ResourceError("cannot lock the host lock file \(path): \(String(cString: strerror(code)))")
        }
        if let left = Self.record(in: descriptor)?.token, left != token, TrialProcesses.exist(token: left) {
            close(descriptor)
            return false
        }
        if writable, let line = try? JSONEncoder().encode(Record(holder: holder, token: token)) {
            _ = ftruncate(descriptor, 0)
            _ = line.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        }
        held.withLock { $0[owner, default: [:]][name] = (descriptor, writable) }
        return true
    }

    /// Lets go of the lock `name` of `holder` (with `token`), if it holds it.
    public func unlock(_ name: String, for holder: LeaseHolder, token: String? = nil) {
        let owner = Owner(holder: holder, token: token)
        let lock = held.withLock { held -> Lock? in
            let lock = held[owner]?.removeValue(forKey: name)
            if held[owner]?.isEmpty == true { held[owner] = nil }
            return lock
        }
        if let lock { Self.letGo(lock) }
    }

    /// Lets go of every lock of `holder` (with `token`).
    public func release(_ holder: LeaseHolder, token: String? = nil) {
        let locks = held.withLock { $0.removeValue(forKey: Owner(holder: holder, token: token)) } ?? [:]
        for lock in locks.values { Self.letGo(lock) }
    }

    /// An open lock file: its descriptor, and whether this process may write its token there.
    private typealias Lock = (descriptor: Int32, writable: Bool)

    /// Who holds locks: a trial's holder and its token.
    private struct Owner: Hashable {
        var holder: LeaseHolder
        var token: String?
    }

    /// Clears the token (a lock let go on purpose leaves none behind) and closes the only descriptor of the open
    /// file, which lets go of its flock.
    private static func letGo(_ lock: Lock) {
        if lock.writable { _ = ftruncate(lock.descriptor, 0) }
        close(lock.descriptor)
    }

    /// What a lock file says of its holder; `nil` when it says nothing (let go on purpose, or never held).
    private static func record(in descriptor: Int32) -> Record? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = pread(descriptor, &buffer, buffer.count, 0)
        guard count > 0 else { return nil }
        return try? JSONDecoder().decode(Record.self, from: Data(buffer[0..<count]))
    }

    /// What the lock file `name` says of its holder, read without locking it: the runner holding it now, or one
    /// killed while holding it (``Record/isLive`` tells); `nil` when it says nothing. For display: `autotune gpus`.
    public func record(of name: String) -> Record? {
        let path = directory.appendingPathComponent(name + ".lock").path
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        return Self.record(in: descriptor)
    }

    /// What a runner writes into a lock file it holds, and clears when it lets go.
    public struct Record: Sendable, Hashable, Codable {
        /// The runner and the trial.
        public var holder: LeaseHolder
        /// The trial's token, which its processes carry (``TrialProcesses``).
        public var token: String?

        /// A record of `holder` with `token`.
        public init(holder: LeaseHolder, token: String?) {
            self.holder = holder
            self.token = token
        }

        /// Whether the resource is still in use: its runner lives, or a process of its trial does.
        public var isLive: Bool { holder.runnerIsAlive || token.map(TrialProcesses.exist(token:)) == true }
    }

    /// The names of the locks `holder` (with `token`) holds.
    public func names(heldBy holder: LeaseHolder, token: String? = nil) -> Set<String> {
        held.withLock { Set($0[Owner(holder: holder, token: token)].map { Array($0.keys) } ?? []) }
    }

    private func prepareDirectory() throws -> URL {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue {
            return directory
        }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            // Every user's runners share it, and none may remove another's files: `/tmp`'s mode, past the umask.
            chmod(directory.path, 0o1777)
        } catch {
            // Another process may have made it meanwhile.
            guard FileManager.default.fileExists(atPath: directory.path) else {
                throw ResourceError(
                    "cannot make the host lock directory \(directory.path): \(error.localizedDescription) (set AUTOTUNE_LOCK_DIR to a directory every autotune process on this host can write)"
                )
            }
        }
        return directory
    }
}

/// A ledger whose GPUs and ports are also held by ``HostLocks``: a study's database keeps its leases (and takes
/// back a dead runner's, once its trial's processes are gone), and the host's locks keep studies with separate
/// databases from handing out the same GPU or port.
///
/// A GPU or port another holder locks is skipped as if leased; the lock is taken before the ledger's transaction
/// and let go when the ledger did not choose it, so a lease is never written for something another study holds.
public struct HostLockedLedger: ResourceLedger {
    /// The study's ledger.
    public let base: any ResourceLedger
    /// The host's locks.
    public let locks: HostLocks
    private let gpuNames: [Int: String]
    private let token: @Sendable (LeaseHolder) -> String?

    /// `base` with `locks`; `gpus` name each index's lock (by UUID when known), and `token` gives a holder's trial
    /// token, left in its lock files so that a killed runner's trial keeps what it holds while it runs
    /// (``HostLocks/tryLock(_:for:token:)``).
    public init(
        base: any ResourceLedger, locks: HostLocks, gpus: [GPU],
        token: @escaping @Sendable (LeaseHolder) -> String? = { _ in nil }
    ) {
        self.base = base
        self.locks = locks
        self.token = token
        gpuNames = Dictionary(gpus.map { ($0.index, HostLocks.name(of: $0)) }) { first, _ in first }
    }

    /// A GPU outside the list given is known by its index alone.
    private func name(ofGPU index: Int) -> String { gpuNames[index] ?? HostLocks.name(of: GPU(index: index)) }

    /// Leases `count` of the candidates that no other holder locks and the ledger has free.
    public func leaseGPUs(
        _ count: Int,
        among candidates: [Int],
        holder: LeaseHolder,
        isAlive: @escaping @Sendable (LeaseHolder) -> Bool
    ) async throws -> [Int]? {
        let token = self.token(holder)
        var locked: [Int] = []
        do {
            for index in candidates where try locks.tryLock(name(ofGPU: index), for: holder, token: token) {
                locked.append(index)
            }
        } catch {
            for index in locked { locks.unlock(name(ofGPU: index), for: holder, token: token) }
            throw error
        }
        var chosen: [Int]?
        defer {
            for index in locked where chosen?.contains(index) != true {
                locks.unlock(name(ofGPU: index), for: holder, token: token)
            }
        }
        guard locked.count >= count else { return nil }
        chosen = try await base.leaseGPUs(count, among: locked, holder: holder, isAlive: isAlive)
        return chosen
    }

    /// Reserves the lowest port of `range` that is bindable, unlocked by any other holder on the host, and free in
    /// the ledger.
    public func reservePort(
        in range: ClosedRange<Int>,
        holder: LeaseHolder,
        isAlive: @escaping @Sendable (LeaseHolder) -> Bool,
        isBindable: @escaping @Sendable (Int) -> Bool
    ) async throws -> Int? {
        // The ledger may ask more than once (a retried transaction): every port locked on the way and not chosen
        // is let go at the end.
        let attempt = Locked<(locked: [Int], error: ResourceError?)>(([], nil))
        let locks = self.locks
        let token = self.token(holder)
        var port: Int?
        defer {
            for other in attempt.withLock({ $0.locked }) where other != port {
                locks.unlock(HostLocks.name(ofPort: other), for: holder, token: token)
            }
        }
        port = try await base.reservePort(in: range, holder: holder, isAlive: isAlive) { candidate in
            guard isBindable(candidate) else { return false }
            do {
                guard try locks.tryLock(HostLocks.name(ofPort: candidate), for: holder, token: token) else {
                    return false
                }
                attempt.withLock { $0.locked.append(candidate) }
                return true
            } catch {
                attempt.withLock { $0.error = error as? ResourceError ?? ResourceError("\(error)") }
                return false
            }
        }
        if port == nil, let error = attempt.withLock({ $0.error }) { throw error }
        return port
    }

    /// Releases the holder's leases in the ledger, then its locks.
    public func release(_ holder: LeaseHolder) async throws {
        defer { locks.release(holder, token: token(holder)) }
        try await base.release(holder)
    }

    /// The ledger's leases on `host`.
    public func leases(host: String) async throws -> [ResourceLease] {
        try await base.leases(host: host)
    }
}
