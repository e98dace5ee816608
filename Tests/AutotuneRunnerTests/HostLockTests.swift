import Autotune
import AutotuneRunner
import AutotuneStore
import AutotuneTesting
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Studies with databases of their own on one machine: each database's ledger sees only its own leases, so the
/// host's locks are all that keeps them from handing out one GPU or port twice.
@Suite(.serialized, .timeLimit(.minutes(5))) struct HostLockTests {
    private func holder(_ trial: Int, study: String) -> LeaseHolder {
        LeaseHolder(host: RunnerIdentity.current.host, pid: getpid(), study: study, trial: trial)
    }

    @Test func twoLedgersOnOneHostNeverHandOutTheSameGPUOrPort() async throws {
        try await withTestScratch { first in
            try await withTestScratch { second in
                let locks = HostLocks(directory: first.directory.appendingPathComponent("locks"))
                let gpus = [GPU(index: 0), GPU(index: 1)]
                let a = HostLockedLedger(base: first.store, locks: locks, gpus: gpus)
                // Another instance on the same directory, as another process would have.
                let b = HostLockedLedger(
                    base: second.store, locks: HostLocks(directory: locks.directory), gpus: gpus)
                let (ownerA, ownerB, laterB) = (holder(0, study: "a"), holder(0, study: "b"), holder(1, study: "b"))
                #expect(try await a.leaseGPUs(1, among: [0, 1], holder: ownerA, isAlive: { _ in true }) == [0])
                #expect(try await b.leaseGPUs(2, among: [0, 1], holder: ownerB, isAlive: { _ in true }) == nil)
                // What a refused lease locked on the way is let go.
                #expect(b.locks.names(heldBy: ownerB).isEmpty)
                #expect(try await b.leaseGPUs(1, among: [0, 1], holder: ownerB, isAlive: { _ in true }) == [1])

                let range = try freeRange(count: 4)
                let portA = try await a.reservePort(
                    in: range, holder: ownerA, isAlive: { _ in true }, isBindable: { _ in true })
                let portB = try await b.reservePort(
                    in: range, holder: ownerB, isAlive: { _ in true }, isBindable: { _ in true })
                #expect(portA == range.lowerBound)
                #expect(portB == range.lowerBound + 1)
                #expect(locks.names(heldBy: ownerA) == ["gpu-index-0", "port-\(range.lowerBound)"])
                // A GPU with a UUID is locked by it: containers may number the same GPU differently.
                #expect(HostLocks.name(of: GPU(index: 3, uuid: "GPU-3db9/x")) == "gpu-GPU-3db9_x")

                try await a.release(ownerA)
                #expect(locks.names(heldBy: ownerA).isEmpty)
                #expect(try await b.leaseGPUs(1, among: [0, 1], holder: laterB, isAlive: { _ in true }) == [0])
                let freed = try await b.reservePort(
                    in: range, holder: laterB, isAlive: { _ in true }, isBindable: { _ in true })
                #expect(freed == range.lowerBound)
            }
        }
    }

    /// One process running two studies of one name from two databases: the same pid, study and trial number, told
    /// apart by their trial tokens (which hash the database's location).
    @Test func twoStudiesOfOneNameInOneProcessAreTwoHolders() async throws {
        try await withTestScratch { first in
            try await withTestScratch { second in
                let locks = HostLocks(directory: first.directory.appendingPathComponent("locks"))
                let gpus = [GPU(index: 0)]
                let a = HostLockedLedger(base: first.store, locks: locks, gpus: gpus) { _ in "at-first" }
                let b = HostLockedLedger(base: second.store, locks: locks, gpus: gpus) { _ in "at-second" }
                let same = holder(1, study: "tune")
                #expect(try await a.leaseGPUs(1, among: [0], holder: same, isAlive: { _ in true }) == [0])
                #expect(try await b.leaseGPUs(1, among: [0], holder: same, isAlive: { _ in true }) == nil)
                try await a.release(same)
                #expect(try await b.leaseGPUs(1, among: [0], holder: same, isAlive: { _ in true }) == [0])
                #expect(locks.names(heldBy: same, token: "at-second") == ["gpu-index-0"])
                #expect(locks.names(heldBy: same, token: "at-first").isEmpty)
            }
        }
    }

    /// The lock is the kernel's `flock`, the one `flock(1)` takes: a port an operator (or another tool) holds
    /// that way is skipped, and the lock of a killed process is free again at once.
    @Test func aLockHeldByAnotherProcessIsSkippedUntilThatProcessIsKilled() async throws {
        try await withTestScratch { scratch in
            let locks = HostLocks(directory: scratch.directory.appendingPathComponent("locks"))
            let ledger = HostLockedLedger(base: scratch.store, locks: locks, gpus: [])
            let range = try freeRange(count: 3)
            // A first lock makes the directory.
            #expect(try !heldElsewhere("probe", locks: locks))
            let path = locks.directory.appendingPathComponent(HostLocks.name(ofPort: range.lowerBound) + ".lock").path
            // The shell opens the file, flock(1) locks it and exits, and the shell becomes `sleep` with the file still
            // open: one process holds the lock, as a runner would.
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", #"exec 9>>"$0"; flock -n 9 || exit 1; exec sleep 60"#, path]
            try process.run()
            defer {
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                process.waitUntilExit()
            }
            let name = HostLocks.name(ofPort: range.lowerBound)
            try await waitUntil("flock(1) holds \(path)") { try heldElsewhere(name, locks: locks) }
            let taken = try await ledger.reservePort(
                in: range, holder: holder(0, study: "s"), isAlive: { _ in true }, isBindable: { _ in true })
            #expect(taken == range.lowerBound + 1)

            // SIGKILL: the process lets go of nothing itself.
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            try await waitUntil("the killed process's lock is free") { try !heldElsewhere(name, locks: locks) }
            let next = try await ledger.reservePort(
                in: range, holder: holder(1, study: "s"), isAlive: { _ in true }, isBindable: { _ in true })
            #expect(next == range.lowerBound)
        }
    }

    /// A killed runner's flock is gone at once, but its trial's server may run on (in a session of its own): the
    /// token the runner left in the lock file keeps the port from another study until that server ends.
    @Test func aKilledRunnersTrialKeepsItsPortWhileItsProcessesRun() async throws {
        try await withTestScratch { scratch in
            let locks = HostLocks(directory: scratch.directory.appendingPathComponent("locks"))
            let ledger = HostLockedLedger(base: scratch.store, locks: locks, gpus: []) { "at-test-\($0.trial)" }
            let range = try freeRange(count: 3)
            let runner = holder(7, study: "s")
            let first = try await ledger.reservePort(
                in: range, holder: runner, isAlive: { _ in true }, isBindable: { _ in true })
            #expect(first == range.lowerBound)
            let name = HostLocks.name(ofPort: range.lowerBound)
            #expect(locks.record(of: name) == HostLocks.Record(holder: runner, token: "at-test-7"))
            try await ledger.release(runner)
            // Let go on purpose: nothing is left.
            #expect(locks.record(of: name) == nil)

            // What a SIGKILLed runner leaves: no flock, its record in the file, and its trial's server running.
            let dead = LeaseHolder(host: runner.host, pid: 999_999, study: "s", trial: 3)
            try JSONEncoder().encode(HostLocks.Record(holder: dead, token: "at-orphan")).write(
                to: locks.directory.appendingPathComponent(name + ".lock"))
            let server = Process()
            server.executableURL = URL(fileURLWithPath: "/bin/sleep")
            server.arguments = ["60"]
            server.environment = [TrialProcesses.variable: TrialProcesses.value(trial: "at-orphan", program: "server")]
            try server.run()
            defer {
                if server.isRunning { kill(server.processIdentifier, SIGKILL) }
                server.waitUntilExit()
            }
            // Until it has exec'd, the child's environment is still this process's.
            try await waitUntil("the server carries its trial's token") { TrialProcesses.exist(token: "at-orphan") }
            #expect(locks.record(of: name)?.isLive == true)
            let other = try await ledger.reservePort(
                in: range, holder: holder(8, study: "s"), isAlive: { _ in true }, isBindable: { _ in true })
            #expect(other == range.lowerBound + 1)
            kill(server.processIdentifier, SIGKILL)
            server.waitUntilExit()
            let freed = try await ledger.reservePort(
                in: range, holder: holder(9, study: "s"), isAlive: { _ in true }, isBindable: { _ in true })
            #expect(freed == range.lowerBound)
            #expect(locks.record(of: name)?.token == "at-test-9")
        }
    }

    @Test func anUnwritableLockDirectoryIsAClearErrorNamingIt() async throws {
        try await withTestScratch { scratch in
            // A file where the directory should be: fails for root too, who may write anywhere.
            let blocked = scratch.directory.appendingPathComponent("not-a-directory")
            try Data().write(to: blocked)
            let locks = HostLocks(directory: blocked.appendingPathComponent("locks"))
            let ledger = HostLockedLedger(base: scratch.store, locks: locks, gpus: [])
            let error = await #expect(throws: ResourceError.self) {
                try await ledger.reservePort(
                    in: 42_000...42_001, holder: holder(0, study: "s"), isAlive: { _ in true },
                    isBindable: { _ in true })
            }
            #expect(error?.message.contains(locks.directory.path) == true)
            #expect(error?.message.contains("AUTOTUNE_LOCK_DIR") == true)
            #expect(try await scratch.store.leases(host: RunnerIdentity.current.host).isEmpty)
        }
    }

    /// Two studies, two SQLite files, one host: run at once on the same two GPUs and port range, no GPU and no
    /// port is ever held by two trials.
    @Test func twoStudiesWithDatabasesOfTheirOwnShareNoGPUAndNoPortWhileTheyRun() async throws {
        let holds = Holds()
        let range = try freeRange(count: 20)
        let locksDirectory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "autotune-host-locks-\(UUID())")
        defer { try? FileManager.default.removeItem(at: locksDirectory) }
        var definition = definition(
            space: try SearchSpace([Parameter("x", .int(lower: 1, upper: 6))]), parallel: 2,
            command: ["/bin/sh", "-c", #"sleep 0.1; echo '{{"score": {x}}}'"#])
        definition.resources = Resources(
            gpus: .declared([0, 1]), gpusPerTrial: GPURequest(count: .fixed(1)), ports: range)
        try await withThrowingTaskGroup(of: [Trial].self) { group in
            for name in ["first", "second"] {
                var own = definition
                own.name = name
                group.addTask {
                    try await withTestStudy(own) { study in
                        guard case .command(let spec) = own.experiment else { return [] }
                        let experiment = HoldRecorder(
                            inner: CommandExperiment(spec: spec, defaultWorkingDirectory: study.scratch.directory),
                            holds: holds)
                        var options = study.options(gpus: FixedGPUInventory(count: 2).gpus)
                        options.hostLocks = HostLocks(directory: locksDirectory)
                        _ = try await study.run(experiment: experiment, options: options)
                        return try await study.trials()
                    }
                }
            }
            for try await trials in group {
                #expect(trials.count == 6)
                #expect(trials.allSatisfy { $0.state == .completed })
            }
        }
        #expect(holds.overlaps == 0)
        #expect(holds.peak == 2)
    }

    /// `count` consecutive ports nothing on this machine listens on, above the ranges other tests use.
    private func freeRange(count: Int) throws -> ClosedRange<Int> {
        for start in stride(from: 45_000 + Int(getpid() % 50) * 100, to: 60_000, by: 100) {
            let range = start...(start + count - 1)
            if range.allSatisfy(Listener.bindable) { return range }
        }
        throw ResourceError("no \(count) free ports")
    }

    /// Whether another holder has the lock `name`: taking it, and letting go at once, says.
    private func heldElsewhere(_ name: String, locks: HostLocks) throws -> Bool {
        let probe = holder(99, study: "probe")
        guard try locks.tryLock(name, for: probe) else { return true }
        locks.release(probe)
        return false
    }

    private func waitUntil(_ what: String, _ condition: () throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while try !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out waiting until \(what)")
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// The GPUs and ports trials of any study hold now, and how often one was held twice.
final class Holds: Sendable {
    private let state = Shared<(gpus: Set<Int>, ports: Set<Int>, overlaps: Int, running: Int, peak: Int)>(
        ([], [], 0, 0, 0))

    var overlaps: Int { state.withLock { $0.overlaps } }
    var peak: Int { state.withLock { $0.peak } }

    func take(gpus: Set<Int>, port: Int?) {
        state.withLock { state in
            if !state.gpus.isDisjoint(with: gpus) { state.overlaps += 1 }
            if let port, !state.ports.insert(port).inserted { state.overlaps += 1 }
            state.gpus.formUnion(gpus)
            state.running += 1
            state.peak = max(state.peak, state.running)
        }
    }

    func give(gpus: Set<Int>, port: Int?) {
        state.withLock { state in
            state.gpus.subtract(gpus)
            if let port { state.ports.remove(port) }
            state.running -= 1
        }
    }
}

/// Runs an experiment while recording in ``Holds`` the GPUs and port its trial holds.
struct HoldRecorder: Experiment {
    let inner: any Experiment
    let holds: Holds

    func run(_ context: TrialContext) async throws -> ExperimentResult {
        let gpus = Set(context.gpus ?? [])
        holds.take(gpus: gpus, port: context.port)
        defer { holds.give(gpus: gpus, port: context.port) }
        return try await inner.run(context)
    }
}
