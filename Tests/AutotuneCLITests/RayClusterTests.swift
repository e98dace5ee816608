import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A command experiment for Ray: logs `start|end|stop X PID GPUS TIME` to `$2` and scores x after `seconds`;
/// `stop` when SIGTERM (Ray's stop) ends it.
private func rayExperiment(in directory: URL, seconds: Double) throws {
    let script = directory.appendingPathComponent("experiment.sh")
    try """
    #!/bin/sh
    trap 'echo "stop $1 $$ ${CUDA_VISIBLE_DEVICES:-none} $(date +%s.%N)" >> "$2"; kill $sleeper 2>/dev/null; exit 143' TERM
    echo "start $1 $$ ${CUDA_VISIBLE_DEVICES:-none} $(date +%s.%N)" >> "$2"
    # In the background, so the trap runs as soon as the signal comes.
    sleep \(seconds) &
    sleeper=$!
    wait $sleeper
    echo "end $1 $$ ${CUDA_VISIBLE_DEVICES:-none} $(date +%s.%N)" >> "$2"
    echo "{\\"y\\": $1}"
    """.write(to: script, atomically: true, encoding: .utf8)
    chmod(script.path, 0o755)
}

/// A grid study of `x` in 0...`max`, each trial one GPU, `parallel` at once, running ``rayExperiment`` with `log`.
private func writeGridTask(
    _ study: String, max: Int, parallel: Int, log: URL, in directory: URL, execution: String = ""
) throws {
    try """
    name: \(study)
    parameters:
      x: {type: int, min: 0, max: \(max)}
    strategy: grid
    parallel: \(parallel)
    objective: {maximize: y}
    resources: {gpus_per_trial: 1}
    \(execution)
    experiment:
      command: [./experiment.sh, "{x}", \(log.path)]
    """.write(to: directory.appendingPathComponent("task.yaml"), atomically: true, encoding: .utf8)
}

/// One run of a trial's program as its log tells it.
private struct Span {
    var x: Int
    /// The program's process id; `nil` when the line does not give one (never 0, which would signal our group).
    var pid: Int32?
    var gpus: Set<Int>
    var start: Double
    /// When it ended or was stopped; `nil` while it runs (or when it died without a word).
    var end: Double?
    /// Whether a SIGTERM ended it.
    var stopped = false

    func overlaps(_ other: Span) -> Bool {
        start < (other.end ?? .infinity) && other.start < (end ?? .infinity)
    }
}

/// The runs in a log written by ``rayExperiment(in:seconds:)``, matched by process id.
private func spans(_ url: URL) -> [Span] {
    let text = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
    let lines = text.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }.filter { $0.count == 5 }
    return lines.filter { $0[0] == "start" }.map { start in
        let end = lines.first { ($0[0] == "end" || $0[0] == "stop") && $0[2] == start[2] }
        return Span(
            x: Int(start[1]) ?? -1, pid: Int32(start[2]).flatMap { $0 > 0 ? $0 : nil },
            gpus: Set(start[3].split(separator: ",").compactMap { Int($0) }), start: Double(start[4]) ?? 0,
            end: end.flatMap { Double($0[4]) }, stopped: end?[0] == "stop")
    }
}

/// The test cluster's jobs whose submission id starts with `prefix` and have not ended.
private func activeRayJobs(prefix: String) throws -> [String] {
    let address = try #require(TestCluster.ray)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["curl", "-sf", "\(address)/api/jobs/"]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    try #require(process.terminationStatus == 0, "the Ray test cluster did not answer at \(address)")
    let jobs = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
    return jobs.compactMap { job in
        guard let id = job["submission_id"] as? String, id.hasPrefix(prefix),
            !["SUCCEEDED", "FAILED", "STOPPED"].contains(job["status"] as? String ?? "")
        else { return nil }
        return id
    }
}

/// Jobs still ending a moment after their runner stopped them: waits up to `seconds` for none to be left.
private func activeRayJobsAfterSettling(prefix: String, seconds: Int = 30) async throws -> [String] {
    var active = try activeRayJobs(prefix: prefix)
    for _ in 0..<(seconds * 2) where !active.isEmpty {
        try await Task.sleep(for: .milliseconds(500))
        active = try activeRayJobs(prefix: prefix)
    }
    return active
}

private func rows(_ study: String, in directory: URL) async throws -> [[String: Any]] {
    let trials = try await autotune(["trials", study, "--format", "json"], in: directory)
    return try #require(try JSONSerialization.jsonObject(with: Data(trials.stdout.utf8)) as? [[String: Any]])
}

/// A two-node Ray cluster on this machine (`scripts/test-cluster`): trials as Ray jobs.
@Suite(.serialized, .timeLimit(.minutes(5))) struct RayClusterTests {
    static let enabled = TestCluster.ray != nil || TestCluster.inCI
    static let why: Comment = "AUTOTUNE_TEST_RAY is not set: \(TestCluster.hint)"

    /// Parallel 4 on two nodes of two GPUs, one GPU a trial: Ray places every trial and gives its GPU (the job
    /// sees it in CUDA_VISIBLE_DEVICES, the trial records it), both nodes are used, no GPU of a node is held by two
    /// trials at once, and no job is left.
    @Test(.enabled(if: enabled, why)) func aParallelStudyOnTwoRayNodesGetsEveryGPUFromRayAndSharesNone() async throws {
        _ = try #require(TestCluster.ray, "CI must start the Ray test cluster first (scripts/test-cluster)")
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        try rayExperiment(in: directory, seconds: 1)
        let log = directory.appendingPathComponent("runs.log")
        let study = "on-ray-\(UUID().uuidString.prefix(8).lowercased())"
        try writeGridTask(
            study, max: 11, parallel: 4, log: log, in: directory,
            execution: "execution: {ray: {address: \(TestCluster.ray!), runtime_env: {env_vars: {FROM_TASK: here}}}}")
        let run = try await autotune(["run", "task.yaml"], in: directory)
        #expect(run.status == 0, "\(run.stderr)")
        let rows = try await rows(study, in: directory)
        #expect(rows.count == 12)
        for row in rows where row["state"] as? String != "completed" {
            Issue.record("trial \(row["number"] ?? "?") did not complete: \(row["error"] ?? "no error")")
        }
        let nodes = Set(rows.compactMap { $0["host"] as? String })
        #expect(nodes.count == 2, "trials ran on \(nodes)")
        let spans = spans(log)
        #expect(spans.count == 12)
        var placed: [(node: String, span: Span)] = []
        for span in spans {
            let row = rows.first { ($0["configuration"] as? [String: Any])?["x"] as? Int == span.x }
            // The GPU Autotune recorded is the one Ray gave the job.
            #expect(Set(row?["gpus"] as? [Int] ?? []) == span.gpus && span.gpus.count == 1, "x=\(span.x)")
            placed.append((row?["host"] as? String ?? "?", span))
        }
        for (index, first) in placed.enumerated() {
            for second in placed[(index + 1)...] where first.node == second.node && first.span.overlaps(second.span) {
                #expect(first.span.gpus.isDisjoint(with: second.span.gpus), "\(first) and \(second)")
            }
        }
        // The task file's runtime_env reached the job, beside the trial's own variables.
        let submission = try String(
            contentsOf: directory.appendingPathComponent("autotune-trials/\(study)/0/ray-submission.json"),
            encoding: .utf8)
        #expect(submission.contains("\"FROM_TASK\" : \"here\"") && submission.contains("AUTOTUNE_TRIAL"))
        #expect(try activeRayJobs(prefix: "autotune-\(study)-").isEmpty)
    }

    /// A model server as a Ray job: placed by Ray, reached on its node's address, benchmarked, stopped.
    @Test(.enabled(if: enabled, why)) func aServingStudyRunsItsServersAsRayJobs() async throws {
        let address = try #require(TestCluster.ray, "CI must start the Ray test cluster first (scripts/test-cluster)")
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let study = "serve-ray-\(UUID().uuidString.prefix(8).lowercased())"
        try """
        name: \(study)
        parameters:
          max_num_seqs: [32, 64]
          tensor_parallel_size: [1, 2]
        strategy: grid
        parallel: 2
        objective: {maximize: output_tokens_per_s}
        resources: {gpus_per_trial: [tensor_parallel_size]}
        experiment:
          kind: serving
          server:
            # Bound to every interface: Ray's address of the node is not the loopback.
            command: ["{autotune}", simulate, --port, "{port}", --model, "{model}", --time-scale, "5",
                      --load-seconds, "0.2", --host, 0.0.0.0]
            model: simulated-7b
          benchmark: {endpoint: completions, concurrency: 8, requests: 24, input_tokens: 64, output_tokens: 16}
        """.write(to: directory.appendingPathComponent("task.yaml"), atomically: true, encoding: .utf8)
        let run = try await autotune(["run", "task.yaml", "--ray", address], in: directory)
        #expect(run.status == 0, "\(run.stderr)")
        let rows = try await rows(study, in: directory)
        #expect(rows.count == 4)
        for row in rows {
            #expect(row["state"] as? String == "completed", "\(row["error"] ?? "no error")")
            let tp = (row["configuration"] as? [String: Any])?["tensor_parallel_size"] as? Int
            #expect((row["gpus"] as? [Int])?.count == tp, "\(row)")
            #expect((row["host"] as? String)?.isEmpty == false)
        }
        #expect(try activeRayJobs(prefix: "autotune-\(study)-").isEmpty)
    }

    /// kill -9 of the runner mid-study: `resume` (told nothing of Ray: the study remembers) stops the jobs the
    /// dead runner left, never runs a configuration twice at once, loses no trial, and leaves no job.
    @Test(.enabled(if: enabled, why)) func aKilledRunnersJobsAreStoppedAndItsTrialsRunOnceByResume() async throws {
        let address = try #require(TestCluster.ray, "CI must start the Ray test cluster first (scripts/test-cluster)")
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        try rayExperiment(in: directory, seconds: 6)
        let log = directory.appendingPathComponent("runs.log")
        let study = "kill-ray-\(UUID().uuidString.prefix(8).lowercased())"
        try writeGridTask(study, max: 7, parallel: 4, log: log, in: directory)
        var leftRunning: [String] = []
        let first = try await autotune(["run", "task.yaml", "--ray", address], in: directory) { process in
            while process.isRunning, spans(log).count < 2 { try await Task.sleep(for: .milliseconds(50)) }
            kill(process.processIdentifier, SIGKILL)
            leftRunning = try activeRayJobs(prefix: "autotune-\(study)-")
        }
        #expect(first.terminationReasonIsSignal)
        #expect(!leftRunning.isEmpty, "the runner was killed with no job running")
        let second = try await autotune(["resume", study], in: directory)
        #expect(second.status == 0, "\(second.stderr)")
        let rows = try await rows(study, in: directory)
        #expect(rows.count == 8)
        #expect(rows.allSatisfy { $0["state"] as? String == "completed" }, "\(rows.map { $0["error"] ?? "-" })")
        let runs = spans(log)
        let unended = runs.filter { $0.end == nil }
        #expect(unended.isEmpty, "a trial's program was never stopped: \(unended)")
        let stopped = runs.filter(\.stopped)
        #expect(!stopped.isEmpty, "no job of the killed runner was stopped: \(runs)")
        for x in 0...7 {
            let ofX = runs.filter { $0.x == x }
            #expect(!ofX.isEmpty, "x=\(x) never ran")
            for (index, one) in ofX.enumerated() {
                for other in ofX[(index + 1)...] {
                    #expect(!one.overlaps(other), "x=\(x) ran twice at once: \(one) and \(other)")
                }
            }
        }
        #expect(try await activeRayJobsAfterSettling(prefix: "autotune-\(study)-").isEmpty)
    }

    /// Ctrl-C twice (drain, then stop now): the runner stops the jobs it started before it exits.
    @Test(.enabled(if: enabled, why)) func aSecondCtrlCStopsTheJobsTheRunnerStarted() async throws {
        let address = try #require(TestCluster.ray, "CI must start the Ray test cluster first (scripts/test-cluster)")
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        try rayExperiment(in: directory, seconds: 60)
        let log = directory.appendingPathComponent("runs.log")
        let study = "stop-ray-\(UUID().uuidString.prefix(8).lowercased())"
        try writeGridTask(study, max: 3, parallel: 2, log: log, in: directory)
        let run = try await autotune(["run", "task.yaml", "--ray", address], in: directory) { process in
            while process.isRunning, spans(log).count < 2 { try await Task.sleep(for: .milliseconds(50)) }
            kill(process.processIdentifier, SIGINT)
            try await Task.sleep(for: .milliseconds(300))
            kill(process.processIdentifier, SIGINT)
        }
        #expect(run.status == 130, "\(run.stderr)")
        // Stopped before the runner exited: nothing to wait for.
        #expect(try activeRayJobs(prefix: "autotune-\(study)-").isEmpty)
        let runs = spans(log)
        let finished = runs.filter { !$0.stopped }
        #expect(finished.isEmpty, "not stopped: \(finished)")
    }

    /// A node lost mid-trial: a third node (the only one with the resource `doomedPORT`) is started, the trial's job
    /// placed on it, its raylet killed with SIGKILL as a machine that goes away. Ray reports the job's supervisor
    /// dead; the trial is not failed but runs again, on a replacement node, and completes on its second attempt.
    /// With `programDiesFirst` the program is killed with the raylet (as the kernel's out-of-memory killer may
    /// take both, or as Ray's watchdog kills it under load): the supervisor, which outlives its raylet for the
    /// seconds Ray takes to notice, reports the program's end by SIGKILL first, and the trial must still count
    /// as lost to its node, not failed.
    @Test(.enabled(if: enabled, why), arguments: [false, true])
    func aTrialWhoseNodeRayLostRunsAgainOnAnother(programDiesFirst: Bool) async throws {
        let address = try #require(TestCluster.ray, "CI must start the Ray test cluster first (scripts/test-cluster)")
        let bin = try #require(TestCluster.environment["AUTOTUNE_TEST_RAY_BIN"], "scripts/test-cluster sets it")
        let gcs = try #require(TestCluster.environment["AUTOTUNE_TEST_RAY_GCS"], "scripts/test-cluster sets it")
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        // Each case its own ports and resource, so no trial of one case is placed on the other's nodes.
        let doomed = programDiesFirst ? 52401 : 52391
        let replacement = doomed + 4
        let resource = "doomed\(doomed)"
        // Each extra node is marked by its node-manager port, which every process of it names.
        func startNode(port: Int) async throws {
            let run = try await command(
                "/bin/sh",
                [
                    "-c",
                    "\(bin)/ray start --address=\(gcs) --node-ip-address=127.0.0.1 --num-cpus=1 --num-gpus=0 "
                        + "--resources='{\"\(resource)\": 1}' --node-manager-port=\(port) "
                        + "--dashboard-agent-listen-port=\(port + 1) --disable-usage-stats",
                ], in: directory)
            try #require(run.status == 0, "ray start failed: \(run.stdout) \(run.stderr)")
        }
        func killNode(port: Int) { for pid in processes(containing: "\(port)") { kill(pid, SIGKILL) } }
        let log = directory.appendingPathComponent("runs.log")
        defer {
            killNode(port: doomed)
            killNode(port: replacement)
            for pid in processes(containing: log.path) { kill(pid, SIGKILL) }
        }
        try await startNode(port: doomed)
        try rayExperiment(in: directory, seconds: 8)
        let study = "lost-ray-\(UUID().uuidString.prefix(8).lowercased())"
        try """
        name: \(study)
        parameters:
          x: {type: int, min: 0, max: 0}
        strategy: grid
        objective: {maximize: y}
        execution:
          ray: {address: \(address), resources: {\(resource): 1}}
        experiment:
          command: [./experiment.sh, "{x}", \(log.path)]
        """.write(to: directory.appendingPathComponent("task.yaml"), atomically: true, encoding: .utf8)
        let run = try await autotune(["run", "task.yaml"], in: directory) { process in
            while process.isRunning, spans(log).isEmpty { try await Task.sleep(for: .milliseconds(50)) }
            // The machine goes: its raylet and agents at once (the job's supervisor, a worker of that raylet,
            // dies with it; the program it started lives on here, as it would not on a machine that is gone).
            killNode(port: doomed)
            if programDiesFirst, let program = spans(log).first?.pid { kill(program, SIGKILL) }
            try await startNode(port: replacement)
        }
        #expect(run.status == 0, "\(run.stderr)")
        let rows = try await rows(study, in: directory)
        let trial = try #require(rows.first)
        #expect(trial["state"] as? String == "completed", "\(trial)")
        #expect(trial["attempt"] as? Int == 2, "\(trial)")
        #expect(spans(log).count == 2)
        #expect(try activeRayJobs(prefix: "autotune-\(study)-").isEmpty)
    }
}
