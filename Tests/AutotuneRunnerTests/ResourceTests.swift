import Autotune
import AutotuneRunner
import AutotuneStore
import AutotuneTesting
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

private func holder(_ trial: Int, study: String = "s") -> LeaseHolder {
    LeaseHolder(host: "test-host", pid: getpid(), study: study, trial: trial)
}

@Suite(.serialized, .timeLimit(.minutes(5))) struct ResourceTests {
    @Test func fiftyConcurrentAcquirersNeverShareAGPU() async throws {
        try await withTestScratch { scratch throws in
            // Two stores on one file stand for two autotune processes on one machine.
            let store = scratch.store
            let other = try SQLiteStudyStore(path: scratch.directory.appendingPathComponent("studies.sqlite").path)
            let gpus = (0..<4).map { GPU(index: $0) }
            let pools = [
                GPUPool(gpus: gpus, ledger: store, pollInterval: .milliseconds(5)),
                GPUPool(gpus: gpus, ledger: other, pollInterval: .milliseconds(5)),
            ]
            let held = Shared<Set<Int>>([])
            let overlaps = Shared(0)
            let served = Shared(0)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for trial in 0..<50 {
                    group.addTask {
                        let pool = pools[trial % 2]
                        let owner = holder(trial, study: "s\(trial % 2)")
                        let leased = try await pool.acquire(1 + trial % 2, holder: owner)
                        held.withLock { set in
                            if !set.isDisjoint(with: leased) { overlaps.withLock { $0 += 1 } }
                            set.formUnion(leased)
                        }
                        try await Task.sleep(for: .milliseconds(2))
                        held.withLock { $0.subtract(leased) }
                        try await (trial % 2 == 0 ? store : other).release(owner)
                        served.withLock { $0 += 1 }
                    }
                }
                try await group.waitForAll()
            }
            #expect(overlaps.withLock { $0 } == 0)
            #expect(served.withLock { $0 } == 50)
            #expect(try await scratch.store.leases(host: "test-host").isEmpty)
        }
    }

    @Test func waitingTrialsAreServedFirstComeFirstServed() async throws {
        try await withTestScratch { scratch throws in
            let store = scratch.store
            let pool = GPUPool(gpus: [GPU(index: 0), GPU(index: 1)], ledger: store, pollInterval: .milliseconds(5))
            _ = try await pool.acquire(2, holder: holder(0))
            let order = Shared<[Int]>([])
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    _ = try await pool.acquire(2, holder: holder(1))
                    order.withLock { $0.append(1) }
                    try await Task.sleep(for: .milliseconds(30))
                    try await store.release(holder(1))
                }
                while await pool.waitingCount < 1 { await Task.yield() }
                group.addTask {
                    // Needs only one GPU, but arrived second: it must not overtake trial 1.
                    _ = try await pool.acquire(1, holder: holder(2))
                    order.withLock { $0.append(2) }
                    try await store.release(holder(2))
                }
                while await pool.waitingCount < 2 { await Task.yield() }
                try await store.release(holder(0))
                try await group.waitForAll()
            }
            #expect(order.withLock { $0 } == [1, 2])
        }
    }

    @Test func askingForMoreGPUsThanExistFailsAtOnce() async throws {
        try await withTestScratch { scratch throws in
            let pool = GPUPool(gpus: [GPU(index: 0), GPU(index: 1)], ledger: scratch.store)
            await #expect(throws: ResourceError.self) { try await pool.acquire(3, holder: holder(0)) }
            let busy = GPUPool(
                gpus: [GPU(index: 0, memoryFreeMiB: 1000), GPU(index: 1, memoryFreeMiB: 90_000)],
                ledger: scratch.store
            )
            await #expect(throws: ResourceError.self) {
                try await busy.acquire(2, minimumFreeMemoryMiB: 40_000, holder: holder(0))
            }
            #expect(try await busy.acquire(1, minimumFreeMemoryMiB: 40_000, holder: holder(0)) == [1])
        }
    }

    @Test func leasesOfADeadProcessAreTakenBack() async throws {
        try await withTestScratch { scratch throws in
            let dead = LeaseHolder(host: "test-host", pid: 999_999, study: "s", trial: 0)
            #expect(
                try await scratch.store.leaseGPUs(2, among: [0, 1], holder: dead, isAlive: { _ in true }) == [0, 1])
            #expect(
                try await scratch.store.leaseGPUs(1, among: [0, 1], holder: holder(1), isAlive: { _ in true }) == nil)
            let taken = try await scratch.store.leaseGPUs(1, among: [0, 1], holder: holder(1)) { $0.pid != 999_999 }
            #expect(taken == [0])
        }
    }

    @Test func fiftyConcurrentReservationsGetFiftyDistinctPorts() async throws {
        try await withTestScratch { scratch throws in
            let allocator = PortAllocator(range: 41000...41999, ledger: scratch.store)
            let ports = try await withThrowingTaskGroup(of: Int.self) { group in
                for trial in 0..<50 { group.addTask { try await allocator.reserve(for: holder(trial)) } }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(ports.count == 50)
            #expect(Set(ports).count == 50)
            #expect(ports.allSatisfy { (41000...41999).contains($0) })
        }
    }

    @Test func exhaustedPortsAreAClearErrorAndBusyPortsAreSkipped() async throws {
        try await withTestScratch { scratch throws in
            // A busy port with two free ones after it: other programs (a database, a cluster) hold ports too.
            var listener = try Listener()
            while !(Listener.bindable(listener.port + 1) && Listener.bindable(listener.port + 2)) {
                listener = try Listener()
            }
            let allocator = PortAllocator(range: listener.port...(listener.port + 2), ledger: scratch.store)
            let first = try await allocator.reserve(for: holder(0))
            let second = try await allocator.reserve(for: holder(1))
            #expect(!([first, second].contains(listener.port)))
            await #expect(throws: ResourceError.self) { try await allocator.reserve(for: holder(2)) }
            try await scratch.store.release(holder(0))
            #expect(try await allocator.reserve(for: holder(2)) == first)
        }
    }

    @Test func theLaunchLimiterNeverLetsMoreThanItsLimitThrough() async throws {
        let limiter = LaunchLimiter(limit: 3)
        let now = Shared(0)
        let peak = Shared(0)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    try await limiter.withPermit {
                        let current = now.withLock {
                            $0 += 1; return $0
                        }
                        peak.withLock { $0 = max($0, current) }
                        try await Task.sleep(for: .milliseconds(10))
                        now.withLock { $0 -= 1 }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(peak.withLock { $0 } == 3)
        #expect(limiter.peak == 3)
        #expect(limiter.active == 0)
    }

    @Test func aCancelledWaiterLeavesTheQueue() async throws {
        let limiter = LaunchLimiter(limit: 1)
        try await limiter.acquire()
        let waiter = Task { try await limiter.acquire() }
        while limiter.waiting < 1 { await Task.yield() }
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        limiter.release()
        #expect(limiter.active == 0)
    }
}

/// A socket listening on a free port, to stand for a program outside any ledger.
final class Listener {
    let descriptor: Int32
    let port: Int

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.descriptor = descriptor
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = INADDR_ANY
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        listen(descriptor, 1)
        var bound = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        self.port = Int(UInt16(bigEndian: bound.sin_port))
    }

    deinit { close(descriptor) }

    /// Whether `port` can be bound now.
    static func bindable(_ port: Int) -> Bool {
        guard port <= 65535 else { return false }
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = INADDR_ANY
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}

@Suite(.serialized, .timeLimit(.minutes(5))) struct GPUStudyTests {
    @Test func trialsSeeTheirOwnGPUsAndPortAndNeverShareAGPU() async throws {
        let space = try SearchSpace([
            Parameter("tp", .categorical([.int(1), .int(2)])), Parameter("x", .int(lower: 1, upper: 6)),
        ])
        var definition = definition(
            space: space,
            parallel: 4,
            command: [
                "/bin/sh", "-c",
                #"echo "$CUDA_VISIBLE_DEVICES {gpus} {port}" > {trial_dir}/seen; sleep 0.1; echo '{{"score": {x}}}'"#,
                "{tp}",
            ]
        )
        definition.resources = Resources(
            gpus: .declared([0, 1, 2]),
            gpusPerTrial: GPURequest(count: .product(of: ["tp"])),
            ports: 42000...42099
        )
        try await withTestStudy(definition) { study in
            guard case .command(let spec) = definition.experiment else {
                Issue.record("the definition's experiment is not a command")
                return
            }
            let checker = GPUOverlapChecker(
                inner: CommandExperiment(spec: spec, defaultWorkingDirectory: study.scratch.directory)
            )
            let gpus = FixedGPUInventory(count: 3).gpus
            #expect(try await study.run(experiment: checker, options: study.options(gpus: gpus)).status == .completed)
            let trials = try await study.trials()
            #expect(trials.count == 12)
            #expect(trials.allSatisfy { $0.state == .completed })
            for trial in trials {
                let gpus = try #require(trial.gpus)
                #expect(gpus.count == Int(trial.configuration["tp"]!.numericValue!))
                let port = try #require(trial.port)
                let seen = try String(
                    contentsOf: study.trialDirectory(trial.number).appendingPathComponent("seen"), encoding: .utf8
                ).trimmingCharacters(in: .whitespacesAndNewlines)
                let list = gpus.map(String.init).joined(separator: ",")
                #expect(seen == "\(list) \(list) \(port)")
            }
            #expect(checker.overlaps == 0)
            #expect(checker.peak >= 2)
            #expect(try await study.store.leases(host: RunnerIdentity.current.host).isEmpty)
        }
    }

    @Test func aTrialAskingForMoreGPUsThanThePoolHasFailsAtOnce() async throws {
        var definition = definition(space: try gridSpace(), maxTrials: 2, parallel: 2, command: ["true"])
        definition.resources = Resources(gpus: .declared([0, 1]), gpusPerTrial: GPURequest(count: .fixed(4)))
        definition.objective = .minimize("wall_time")
        let trials = try await withTestStudy(definition) { study in
            _ = try await study.run(options: study.options(gpus: FixedGPUInventory(count: 2).gpus))
            return try await study.trials()
        }
        #expect(trials.count == 2)
        for trial in trials {
            #expect(trial.error?.stage == .resources)
            #expect(trial.error?.message == "the trial needs 4 GPUs, but the pool has 2 (0,1)")
        }
    }
}

/// Runs an experiment while registering the GPUs it holds, counting any GPU held by two trials at once.
final class GPUOverlapChecker: Experiment {
    let inner: any Experiment
    private let state = Shared<(held: Set<Int>, overlaps: Int, running: Int, peak: Int)>(([], 0, 0, 0))

    init(inner: any Experiment) { self.inner = inner }

    var overlaps: Int { state.withLock { $0.overlaps } }
    var peak: Int { state.withLock { $0.peak } }

    func run(_ context: TrialContext) async throws -> ExperimentResult {
        let gpus = Set(context.gpus ?? [])
        state.withLock { state in
            if !state.held.isDisjoint(with: gpus) { state.overlaps += 1 }
            state.held.formUnion(gpus)
            state.running += 1
            state.peak = max(state.peak, state.running)
        }
        defer {
            state.withLock { state in
                state.held.subtract(gpus)
                state.running -= 1
            }
        }
        return try await inner.run(context)
    }
}

@Suite(.timeLimit(.minutes(5))) struct ProcessStateTests {
    @Test func theStateFollowsTheLastParenthesisOfTheName() {
        #expect(processState(stat: "4242 (autotune) Z 1 4242 4242 0 -1") == "Z")
        #expect(processState(stat: "17 (my (odd) name) S 1 17 17 0 -1") == "S")
        #expect(processState(stat: "garbage") == nil)
    }

    @Test func thisProcessIsAliveAndAMissingOneIsNot() {
        #expect(RunnerIdentity.current.isAliveOnThisHost)
        #expect(!RunnerIdentity(host: RunnerIdentity.current.host, pid: 999_999).isAliveOnThisHost)
        #expect(!RunnerIdentity(host: "another-host", pid: getpid()).isAliveOnThisHost)
    }

    @Test func theStartMarkIsTheBootAndTheTwentySecondField() throws {
        let stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 1 0 0 0 5 3 0 0 20 0 1 0 987654 1000 10"
        let mark = try #require(startMark(stat: stat))
        #expect(mark.hasSuffix(":987654"))
        #expect(startMark(stat: "4242 (short) S 1 2 3") == nil)
        let own = try #require(processStartMark(getpid()))
        #expect(own == RunnerIdentity.current.started)
        #expect(processStartMark(999_999) == nil)
    }

    /// Pids wrap: a runner that crashed long ago may have its pid given to an unrelated process. Its record
    /// (this process's pid with another start) must count as dead, its leases as free.
    @Test func aLaterProcessGivenARecordedPidIsNotTheRecordedRunner() async throws {
        let me = RunnerIdentity.current
        let recycled = RunnerIdentity(host: me.host, pid: me.pid, started: "another-boot:1")
        #expect(!recycled.isAliveOnThisHost)
        #expect(RunnerIdentity(host: me.host, pid: me.pid, started: nil).isAliveOnThisHost)
        #expect(!processIsAlive(me.pid, started: "another-boot:1"))
        try await withTestScratch { scratch throws in
            let stale = LeaseHolder(host: me.host, pid: me.pid, study: "s", trial: 0, started: "another-boot:1")
            let first = try await scratch.store.leaseGPUs(1, among: [0], holder: stale, isAlive: { _ in true })
            #expect(first == [0])
            let next = LeaseHolder(host: me.host, pid: me.pid, study: "s", trial: 1, started: me.started)
            let taken = try await scratch.store.leaseGPUs(1, among: [0], holder: next) {
                processIsAlive($0.pid, started: $0.started)
            }
            #expect(taken == [0])
        }
    }
}
