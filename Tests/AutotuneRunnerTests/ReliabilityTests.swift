import Autotune
import AutotuneRunner
import AutotuneStore
import AutotuneTesting
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Starts `sleep 30` carrying `token` as a trial's program would, and returns its pid: what a runner killed
/// between spawning a trial's process and recording its process group leaves behind (no record at all).
private func orphan(carrying token: String) throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sleep")
    process.arguments = ["30"]
    process.environment = ProcessInfo.processInfo.environment.merging([TrialProcesses.variable: token]) { $1 }
    try process.run()
    return process.processIdentifier
}

/// Waits (a bounded time) until `pid` is gone; the caller's expectation says whether it went.
private func waitUntilGone(_ pid: Int32) async throws -> Bool {
    for _ in 0..<200 {
        if !processExists(pid) { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return false
}

@Suite(.serialized, .timeLimit(.minutes(5))) struct ReliabilityTests {
    /// A Ctrl-C at the terminal reaches the trial's programs at the moment it reaches Autotune, which may hear a
    /// program end before its own signal: a program stopped from outside (SIGINT, SIGTERM, SIGHUP) is not a
    /// configuration that failed, and runs again; one that is stopped on every attempt fails on its last.
    @Test func aProgramStoppedFromOutsideRunsAgainAndOneStoppedEveryTimeFailsOnItsLastAttempt() async throws {
        let marker = FileManager.default.temporaryDirectory.appendingPathComponent("stopped-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: marker) }
        let script = """
            if [ {x} = 1 ] && [ ! -e \(marker.path) ]; then touch \(marker.path); kill -INT $$; fi
            if [ {x} = 2 ]; then kill -TERM $$; fi
            echo '{{"score": {x}}}'
            """
        let space = try SearchSpace([Parameter("x", .categorical([.int(1), .int(2)]))])
        let trials = try await withTestStudy(
            definition(space: space, maxTrials: 2, parallel: 1, command: ["/bin/sh", "-c", script])
        ) { study in
            #expect(try await study.run().status == .completed)
            return try await study.trials()
        }
        #expect(trials.count == 2)
        let once = try #require(trials.first { $0.configuration["x"] == .int(1) })
        #expect(once.state == .completed && once.attempt == 2, "\(once)")
        let always = try #require(trials.first { $0.configuration["x"] == .int(2) })
        #expect(always.state == .failed && always.attempt == 3, "\(always)")
        #expect(always.error?.stage == .run && always.error?.message.contains("killed by signal 15") == true)
    }

    @Test func aTrialsProcessesAreFoundByTheirTokenAloneAndKilled() async throws {
        let token = TrialProcesses.token(storeLocation: "/tmp/x.sqlite", study: "s\(UUID())", trial: 3)
        let pid = try orphan(carrying: TrialProcesses.value(trial: token, program: "command"))
        defer { kill(pid, SIGKILL) }
        for _ in 0..<100 where !TrialProcesses.exist(token: token) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(TrialProcesses.find(token: token) == [pid])
        #expect(TrialProcesses.find(token: token + "0").isEmpty)
        #expect(TrialProcesses.find(token: TrialProcesses.value(trial: token, program: "server"), exact: true).isEmpty)
        #expect(TrialProcesses.kill(token: token))
        #expect(try await waitUntilGone(pid))
        #expect(!TrialProcesses.kill(token: token))
    }

    /// The spawn window: the runner died after the trial's process existed but before its process group was
    /// recorded. Resume finds the process by its token, ends it, and only then runs the trial again.
    @Test func resumeEndsATrialsProcessThatWasNeverRecorded() async throws {
        try await withTestScratch { scratch in
            let name = "window"
            let token = TrialProcesses.token(storeLocation: scratch.store.location, study: name, trial: 0)
            let pid = try orphan(carrying: TrialProcesses.value(trial: token, program: "command"))
            defer { kill(pid, SIGKILL) }
            // Each run of the command notes whether the earlier attempt's process still runs beside it.
            let probe = """
                state=$(cut -d' ' -f3 /proc/\(pid)/stat 2>/dev/null)
                if [ -n "$state" ] && [ "$state" != Z ]; then echo overlap >> {trial_dir}/overlap; fi
                echo '{{"score": 1}}'
                """
            let study = try await scratch.study(
                definition(
                    name: name, space: try gridSpace(), maxTrials: 2, parallel: 1, command: ["/bin/sh", "-c", probe]))
            var lost = Trial(number: 0, configuration: try gridSpace().gridConfiguration(at: 0, resolution: 1))
            lost.state = .running
            lost.attempt = 1
            try await study.store.saveLaunched([lost], studyID: study.id, checkpoint: nil)
            try await study.store.saveStatus(
                .running, studyID: study.id, runner: RunnerIdentity(host: RunnerIdentity.current.host, pid: 999_999),
                elapsedSeconds: 0)
            #expect(try await study.run().status == .completed)
            #expect(try await waitUntilGone(pid))
            #expect(
                !FileManager.default.fileExists(atPath: study.trialDirectory(0).appendingPathComponent("overlap").path))
            let trials = try await study.trials()
            #expect(trials.first?.attempt == 2)
            #expect(trials.allSatisfy { $0.state == .completed })
        }
    }

    /// A grandchild that leaves the trial's process group with `setsid` still ends with the trial: when the
    /// command exits, and when the trial times out.
    @Test(arguments: [false, true])
    func aGrandchildThatLeavesTheGroupEndsWithItsTrial(timesOut: Bool) async throws {
        let script = """
            setsid sleep 30 &
            echo $! > {trial_dir}/escaped
            \(timesOut ? "sleep 30" : "true")
            echo '{{"score": 1}}'
            """
        let definition = definition(
            space: try gridSpace(), maxTrials: 1, parallel: 1,
            timeouts: Timeouts(trial: .seconds(1), killGrace: .milliseconds(200)),
            command: ["/bin/sh", "-c", script])
        try await withTestStudy(definition) { study in
            _ = try await study.run()
            let trial = try #require(try await study.trials().first)
            #expect(trial.state == (timesOut ? .failed : .completed))
            let escaped = try readPID(study.trialDirectory(0).appendingPathComponent("escaped"))
            defer { kill(escaped, SIGKILL) }
            #expect(try await waitUntilGone(escaped))
        }
    }

    /// Leases of a runner that died stay held while its trial's processes run; once they are gone, the next
    /// request takes them back.
    @Test func aDeadRunnersLeasesAreFreedOnlyOnceItsTrialsProcessesAreGone() async throws {
        try await withTestScratch { scratch throws in
            let study = "leases-\(UUID().uuidString.prefix(6))"
            let dead = LeaseHolder(host: RunnerIdentity.current.host, pid: 999_999, study: study, trial: 0)
            #expect(try await scratch.store.leaseGPUs(1, among: [0], holder: dead, isAlive: { _ in true }) == [0])
            let token = TrialProcesses.token(storeLocation: scratch.store.location, study: study, trial: 0)
            let pid = try orphan(carrying: TrialProcesses.value(trial: token, program: "server"))
            defer { kill(pid, SIGKILL) }
            for _ in 0..<100 where !TrialProcesses.exist(token: token) { try await Task.sleep(for: .milliseconds(10)) }
            let alive = TrialProcesses.leaseHolderIsAlive(storeLocation: scratch.store.location)
            let other = LeaseHolder(host: dead.host, pid: getpid(), study: study, trial: 1)
            #expect(try await scratch.store.leaseGPUs(1, among: [0], holder: other, isAlive: alive) == nil)
            #expect(
                try await scratch.store.reservePort(in: 45_000...45_000, holder: dead, isAlive: alive) { _ in true }
                    == 45_000)
            #expect(
                try await scratch.store.reservePort(in: 45_000...45_000, holder: other, isAlive: alive) { _ in true }
                    == nil)
            kill(pid, SIGKILL)
            #expect(try await waitUntilGone(pid))
            #expect(try await scratch.store.leaseGPUs(1, among: [0], holder: other, isAlive: alive) == [0])
        }
    }
}
