import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The throwaway PostgreSQL server and Slurm cluster `scripts/test-cluster start` brings up (CI does).
enum TestCluster {
    static let environment = ProcessInfo.processInfo.environment
    static let postgres = environment["AUTOTUNE_TEST_POSTGRES"]
    static let slurmConf = environment["SLURM_CONF"]
    /// The Ray test cluster's dashboard, `http://127.0.0.1:8275`.
    static let ray = environment["AUTOTUNE_TEST_RAY"]
    static let inCI = environment["CI"] == "true"
    static let hint = "run `eval \"$(scripts/test-cluster start)\"` as root first (CI does)"
}

/// A command experiment that logs its start and end, with the process that ran it, to `log`, and scores x.
private func loggingExperiment(in directory: URL, seconds: Double) throws {
    let script = directory.appendingPathComponent("experiment.sh")
    try """
    #!/bin/sh
    echo "start $1 $PPID ${SLURMD_NODENAME:-local} ${CUDA_VISIBLE_DEVICES:-none} $(date +%s.%N)" >> "$2"
    sleep \(seconds)
    echo "end $1 $PPID ${SLURMD_NODENAME:-local} ${CUDA_VISIBLE_DEVICES:-none} $(date +%s.%N)" >> "$2"
    echo "{\\"y\\": $1}"
    """.write(to: script, atomically: true, encoding: .utf8)
    chmod(script.path, 0o755)
}

/// Log lines `start|end X PID NODE GPUS TIME` as fields.
private func logLines(_ url: URL) -> [[String]] {
    let text = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
    return text.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
}

/// Runs three workers on a new 12-point grid study (6 s trials, 2 at a time each, stale after 2 s) and
/// kills the second with SIGKILL as soon as one of its trials has started; returns each worker's run.
private func threeWorkersKillingOne(study: String, in directory: URL, url: String, extra: String = "") async throws
    -> [Int: Run]
{
    try loggingExperiment(in: directory, seconds: 6)
    let log = directory.appendingPathComponent("runs.log")
    try """
    name: \(study)
    parameters:
      x: {type: int, min: 0, max: 11}
    strategy: {name: grid, order: shuffled}
    parallel: 2
    budget: {max_trials: 12}
    objective: {maximize: y}
    experiment:
      command: [./experiment.sh, "{x}", \(log.path)]
    \(extra)
    """.write(to: directory.appendingPathComponent("task.yaml"), atomically: true, encoding: .utf8)
    let arguments = ["worker", "task.yaml", "--db", url, "--stale-after", "2"]
    return try await withThrowingTaskGroup(of: (Int, Run).self) { group in
        for index in 0..<3 {
            group.addTask {
                let run = try await autotune(arguments, in: directory) { process in
                    guard index == 1 else { return }
                    // Kill it once it has trials running, as a machine lost mid-trial.
                    let pid = process.processIdentifier
                    while process.isRunning,
                        !logLines(log).contains(where: { $0.count > 2 && $0[0] == "start" && $0[2] == "\(pid)" })
                    {
                        try await Task.sleep(for: .milliseconds(20))
                    }
                    // At once: a trial's processes carry its token from before they exist, so the worker that
                    // takes the trial back finds them however soon after the spawn this one dies.
                    kill(pid, SIGKILL)
                }
                return (index, run)
            }
        }
        var runs: [Int: Run] = [:]
        for try await (index, run) in group { runs[index] = run }
        return runs
    }
}

@Suite(.serialized, .timeLimit(.minutes(5))) struct ScaleOutTests {
    /// Three workers share one PostgreSQL study of 12 grid points; one is killed with SIGKILL while it runs
    /// trials. The other two take those trials back once their heartbeats are stale (2 s, well before a
    /// trial's 6 s end), and the study finishes with every point completed exactly once.
    @Test(
        .enabled(
            if: TestCluster.postgres != nil || TestCluster.inCI,
            "AUTOTUNE_TEST_POSTGRES is not set: \(TestCluster.hint)"))
    func threeWorkersFinishAPostgresStudyEvenWhenOneIsKilledMidTrial() async throws {
        let url = try #require(TestCluster.postgres, "CI must start PostgreSQL first (scripts/test-cluster)")
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let log = directory.appendingPathComponent("runs.log")
        let study = "workers-\(UUID().uuidString.prefix(8))"
        let runs = try await threeWorkersKillingOne(study: study, in: directory, url: url)
        #expect(runs[1]?.terminationReasonIsSignal == true)
        for index in [0, 2] {
            let run = try #require(runs[index])
            #expect(run.status == 0, "worker \(index): \(run.stderr)")
        }
        let lines = logLines(log)
        // Every point finished exactly once: no trial ran to its end twice. The killed worker's own processes
        // did not finish either: the worker that took its trials back on this machine killed them.
        let ends = lines.filter { $0[0] == "end" }.map { Int($0[1]) }
        #expect(ends.count == 12)
        #expect(Set(ends) == Set((0..<12).map { Optional($0) }))
        let trials = try await autotune(["trials", study, "--db", url, "--format", "json"], in: directory)
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(trials.stdout.utf8)) as? [[String: Any]])
        #expect(rows.count == 12)
        #expect(rows.allSatisfy { $0["state"] as? String == "completed" })
        // The killed worker's trials ran again: a second attempt, and a start with no end for the first.
        let retried = rows.filter { ($0["attempt"] as? Int ?? 0) > 1 }
        #expect(!retried.isEmpty)
        #expect(lines.filter { $0[0] == "start" }.count == 12 + retried.count)
        #expect(processes(containing: "experiment.sh").isEmpty)
        let status = try await autotune(["status", study, "--db", url], in: directory)
        #expect(status.stdout.contains("completed"), "\(status.stdout)")
    }
}

/// Jobs of the test cluster still pending or running.
private func activeSlurmJobs() throws -> [String] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["squeue", "-h", "-t", "PENDING,RUNNING,COMPLETING", "-o", "%i %j"]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
}

extension ScaleOutTests {
    /// Parallel 4 on the two-node cluster, two GPUs per trial: Slurm places every trial and gives its GPUs
    /// (the job sees them in CUDA_VISIBLE_DEVICES), both nodes are used, and no GPU of a node is held by two
    /// trials whose jobs overlap in time.
    @Test(.enabled(if: TestCluster.slurmConf != nil || TestCluster.inCI, "SLURM_CONF is not set: \(TestCluster.hint)"))
    func aParallelStudyOnTwoSlurmNodesGetsEveryGPUFromSlurmAndSharesNone() async throws {
        _ = try #require(TestCluster.slurmConf, "CI must start the Slurm test cluster first (scripts/test-cluster)")
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        try loggingExperiment(in: directory, seconds: 1)
        let log = directory.appendingPathComponent("runs.log")
        try """
        name: on-slurm
        parameters:
          x: {type: int, min: 0, max: 11}
        strategy: grid
        parallel: 4
        budget: {max_trials: 12}
        objective: {maximize: y}
        resources: {gpus_per_trial: 2}
        experiment:
          command: [./experiment.sh, "{x}", \(log.path)]
        """.write(to: directory.appendingPathComponent("task.yaml"), atomically: true, encoding: .utf8)
        let run = try await autotune(["run", "task.yaml", "--slurm"], in: directory)
        #expect(run.status == 0, "\(run.stderr)")
        let trials = try await autotune(["trials", "on-slurm", "--format", "json"], in: directory)
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(trials.stdout.utf8)) as? [[String: Any]])
        #expect(rows.count == 12)
        for row in rows where row["state"] as? String != "completed" {
            Issue.record("trial \(row["number"] ?? "?") did not complete: \(row["error"] ?? "no error")")
        }
        #expect(Set(rows.compactMap { $0["host"] as? String }) == ["n1", "n2"])
        let table = try await autotune(["trials", "on-slurm"], in: directory)
        #expect(table.stdout.split(separator: "\n").first?.contains("node  gpus") == true, "\(table.stdout)")
        #expect(rows.allSatisfy { ($0["gpus"] as? [Int])?.count == 2 })
        // What each job saw: node, CUDA_VISIBLE_DEVICES, start and end, by x.
        let lines = logLines(log)
        struct Span {
            var node: String
            var gpus: Set<Int>
            var start: Double
            var end: Double
        }
        var spans: [Span] = []
        for start in lines where start[0] == "start" {
            let end = try #require(lines.first { $0[0] == "end" && $0[1] == start[1] })
            let gpus = Set(start[4].split(separator: ",").compactMap { Int($0) })
            spans.append(Span(node: start[3], gpus: gpus, start: Double(start[5]) ?? 0, end: Double(end[5]) ?? 0))
            // The GPUs Autotune recorded are the ones Slurm gave the job.
            let row = rows.first { ($0["configuration"] as? [String: Any])?["x"] as? Int == Int(start[1]) }
            #expect(Set(row?["gpus"] as? [Int] ?? []) == gpus)
            #expect(row?["host"] as? String == start[3])
        }
        #expect(spans.count == 12)
        for (index, first) in spans.enumerated() {
            for second in spans[(index + 1)...] where first.node == second.node {
                let overlap = first.start < second.end && second.start < first.end
                #expect(!overlap || first.gpus.isDisjoint(with: second.gpus), "\(first) and \(second)")
            }
        }
        #expect(try activeSlurmJobs().filter { $0.contains("on-slurm") }.isEmpty)
    }

    /// A trial past its deadline has its job cancelled with scancel: the trial fails at stage timeout and no
    /// job is left in the queue.
    @Test(.enabled(if: TestCluster.slurmConf != nil || TestCluster.inCI, "SLURM_CONF is not set: \(TestCluster.hint)"))
    func aSlurmTrialPastItsDeadlineIsCancelled() async throws {
        _ = try #require(TestCluster.slurmConf, "CI must start the Slurm test cluster first (scripts/test-cluster)")
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        try loggingExperiment(in: directory, seconds: 60)
        try """
        name: slurm-deadline
        parameters:
          x: {type: int, min: 0, max: 0}
        strategy: grid
        objective: {maximize: y}
        resources: {gpus_per_trial: 1}
        timeouts: {trial: 3s}
        experiment:
          command: [./experiment.sh, "{x}", \(directory.appendingPathComponent("runs.log").path)]
        """.write(to: directory.appendingPathComponent("task.yaml"), atomically: true, encoding: .utf8)
        let run = try await autotune(["run", "task.yaml", "--slurm"], in: directory)
        #expect(run.status == 4, "\(run.stderr)")
        let trials = try await autotune(["trials", "slurm-deadline", "--format", "json"], in: directory)
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(trials.stdout.utf8)) as? [[String: Any]])
        #expect((rows.first?["error"] as? [String: Any])?["stage"] as? String == "timeout")
        #expect(try activeSlurmJobs().filter { $0.contains("slurm-deadline") }.isEmpty)
    }

    /// One task file, unchanged, runs here, on Slurm, with PostgreSQL, and on Slurm with PostgreSQL: only the
    /// flags differ.
    @Test(
        .enabled(
            if: (TestCluster.slurmConf != nil && TestCluster.postgres != nil) || TestCluster.inCI,
            "SLURM_CONF or AUTOTUNE_TEST_POSTGRES is not set: \(TestCluster.hint)"
        )
    )
    func theSameTaskFileRunsLocallyOnSlurmAndWithPostgresByFlagsAlone() async throws {
        let url = try #require(TestCluster.postgres, "CI must start PostgreSQL first (scripts/test-cluster)")
        _ = try #require(TestCluster.slurmConf, "CI must start the Slurm test cluster first (scripts/test-cluster)")
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        try loggingExperiment(in: directory, seconds: 0.2)
        try """
        name: anywhere
        parameters:
          x: {type: int, min: 0, max: 3}
        strategy: grid
        parallel: 2
        objective: {maximize: y}
        resources: {gpus: [0, 1], gpus_per_trial: 1}
        experiment:
          command: [./experiment.sh, "{x}", \(directory.appendingPathComponent("runs.log").path)]
        """.write(to: directory.appendingPathComponent("task.yaml"), atomically: true, encoding: .utf8)
        let suffix = UUID().uuidString.prefix(8)
        let variants: [(String, [String])] = [
            ("local", ["--db", "local.sqlite"]),
            ("slurm", ["--db", "slurm.sqlite", "--slurm"]),
            ("postgres", ["--db", url, "--study", "anywhere-pg-\(suffix)"]),
            ("slurm+postgres", ["--db", url, "--study", "anywhere-slurm-pg-\(suffix)", "--slurm"]),
        ]
        for (label, flags) in variants {
            let run = try await autotune(["run", "task.yaml"] + flags, in: directory)
            #expect(run.status == 0, "\(label): \(run.stderr)")
            if !run.stdout.contains("4 completed, 0 failed") {
                let database = flags[flags.firstIndex(of: "--db")! + 1]
                let study = flags.firstIndex(of: "--study").map { flags[$0 + 1] } ?? "anywhere"
                let failed = try await autotune(
                    ["trials", study, "--db", database, "--state", "failed"], in: directory)
                Issue.record("\(label): \(run.stdout)\n\(failed.stdout)\n\(run.stderr)")
            }
            #expect(run.stdout.contains("Best: trial"), "\(label): \(run.stdout)")
        }
    }
}

extension ScaleOutTests {
    /// A worker needs a database other machines can reach; a SQLite file is refused with the way out.
    @Test func aWorkerOnASQLiteFileIsRefusedWithTheAlternative() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = try await autotune(["worker", "some-study", "--db", "local.sqlite"], in: directory)
        #expect(run.status == 2)
        #expect(run.stderr.contains("--db postgres://"), "\(run.stderr)")
        #expect(run.stderr.contains("autotune run"), "\(run.stderr)")
    }

    /// Joining a shared study with a task file that no longer matches it is refused (exit 2), naming the
    /// study and how to join it anyway; joined by name, a finished study says so.
    @Test(
        .enabled(
            if: TestCluster.postgres != nil || TestCluster.inCI,
            "AUTOTUNE_TEST_POSTGRES is not set: \(TestCluster.hint)"))
    func aWorkerJoiningWithADifferentTaskFileIsRefused() async throws {
        let url = try #require(TestCluster.postgres, "CI must start PostgreSQL first (scripts/test-cluster)")
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        try loggingExperiment(in: directory, seconds: 0)
        let study = "mismatch-\(UUID().uuidString.prefix(8))"
        func task(max: Int) -> String {
            """
            name: \(study)
            parameters:
              x: {type: int, min: 0, max: \(max)}
            strategy: grid
            objective: {maximize: y}
            experiment:
              command: [./experiment.sh, "{x}", \(directory.appendingPathComponent("runs.log").path)]
            """
        }
        try task(max: 2).write(to: directory.appendingPathComponent("task.yaml"), atomically: true, encoding: .utf8)
        let first = try await autotune(["worker", "task.yaml", "--db", url], in: directory)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("3 completed"), "\(first.stdout)")
        try task(max: 5).write(to: directory.appendingPathComponent("task.yaml"), atomically: true, encoding: .utf8)
        let second = try await autotune(["worker", "task.yaml", "--db", url], in: directory)
        #expect(second.status == 2)
        #expect(second.stderr.contains("study '\(study)' exists with a different definition"), "\(second.stderr)")
        // By name it joins, and finds the study complete.
        let byName = try await autotune(["worker", study, "--db", url], in: directory)
        #expect(byName.status == 0)
        #expect(byName.stdout.contains("already complete"), "\(byName.stdout)")
    }
}

extension ScaleOutTests {
    /// With `on_lost_trial: fail`, the trials of a killed worker are failed at stage `lost` by a survivor
    /// (told to the strategy, not re-run); the rest of the study completes.
    @Test(
        .enabled(
            if: TestCluster.postgres != nil || TestCluster.inCI,
            "AUTOTUNE_TEST_POSTGRES is not set: \(TestCluster.hint)"))
    func aKilledWorkersTrialsFailAsLostWhenTheStudySaysSo() async throws {
        let url = try #require(TestCluster.postgres, "CI must start PostgreSQL first (scripts/test-cluster)")
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let study = "lost-\(UUID().uuidString.prefix(8))"
        let runs = try await threeWorkersKillingOne(study: study, in: directory, url: url, extra: "on_lost_trial: fail")
        #expect(runs[1]?.terminationReasonIsSignal == true)
        #expect(runs[0]?.status == 0 && runs[2]?.status == 0)
        let trials = try await autotune(["trials", study, "--db", url, "--format", "json"], in: directory)
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(trials.stdout.utf8)) as? [[String: Any]])
        #expect(rows.count == 12)
        let lost = rows.filter { ($0["error"] as? [String: Any])?["stage"] as? String == "lost" }
        #expect(!lost.isEmpty)
        #expect(lost.allSatisfy { $0["state"] as? String == "failed" && $0["attempt"] as? Int == 1 })
        #expect(rows.filter { $0["state"] as? String == "completed" }.count == 12 - lost.count)
        #expect(processes(containing: "experiment.sh").isEmpty)
    }
}
