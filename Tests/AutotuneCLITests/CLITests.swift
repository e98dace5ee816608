import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The `autotune` executable SwiftPM built next to this test bundle.
let executable: URL = {
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = directory.appendingPathComponent("autotune")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        directory.deleteLastPathComponent()
    }
    return URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
        "../../.build/debug/autotune"
    )
    .standardizedFileURL
}()

struct Run {
    var status: Int32
    var stdout: String
    var stderr: String
    var terminationReasonIsSignal: Bool = false
}

/// The pids of processes whose command line contains `text`.
func processes(containing text: String) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { Int32($0) }.filter { pid in
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        return String(decoding: data, as: UTF8.self).contains(text)
    }
}

/// Runs autotune in `directory`; `whileRunning` may signal the process.
func autotune(
    _ arguments: [String],
    in directory: URL,
    environment: [String: String] = [:],
    whileRunning: ((Process) async throws -> Void)? = nil
) async throws -> Run {
    let process = Process()
    if !environment.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    // Foundation starts it in a process group of its own (led by it), so a test can signal that group as a
    // terminal's Ctrl-C would, without signalling the test runner.
    process.executableURL = executable
    process.arguments = arguments
    process.currentDirectoryURL = directory
    let out = directory.appendingPathComponent("out-\(UUID().uuidString)")
    let err = directory.appendingPathComponent("err-\(UUID().uuidString)")
    _ = FileManager.default.createFile(atPath: out.path, contents: nil)
    _ = FileManager.default.createFile(atPath: err.path, contents: nil)
    // Closed once the child has them: left open, every run leaves two descriptors behind in the test process
    // (hundreds were held, up to number 576, in a full run that hung with nothing running).
    let outHandle = try FileHandle(forWritingTo: out)
    let errHandle = try FileHandle(forWritingTo: err)
    defer {
        try? outHandle.close()
        try? errHandle.close()
    }
    process.standardOutput = outHandle
    process.standardError = errHandle
    process.standardInput = FileHandle.nullDevice
    try process.run()
    if let whileRunning { try await whileRunning(process) }
    while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
    return Run(
        status: process.terminationStatus,
        stdout: try String(contentsOf: out, encoding: .utf8),
        stderr: try String(contentsOf: err, encoding: .utf8),
        terminationReasonIsSignal: process.terminationReason == .uncaughtSignal
    )
}

func scratch() throws -> URL {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("autotune-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return directory
}

@Suite(.serialized, .timeLimit(.minutes(5))) struct CLITests {
    @Test func ctrlCStopsTheStudyAndResumeFinishesItWithNoTrialRunTwice() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let done = directory.appendingPathComponent("done.log")
        try """
        name: grid12
        parallel: 2
        parameters:
          level: {type: int, min: 1, max: 3}
          long: {type: bool}
          mode: [a, b]
        objective: {maximize: score}
        strategy: grid
        experiment:
          command: [/bin/sh, -c, 'sleep 0.5; echo {trial} >> \(done.path); echo "{{\\"score\\": {level}}}"', x, '{long}', '{mode}']
        """.write(to: directory.appendingPathComponent("task.yaml"), atomically: true, encoding: .utf8)

        let first = try await autotune(["run", "task.yaml"], in: directory) { process in
            // Stop once a few trials are recorded, while others are running.
            while ((try? String(contentsOf: done, encoding: .utf8)) ?? "").split(separator: "\n").count < 2 {
                try await Task.sleep(for: .milliseconds(20))
            }
            kill(process.processIdentifier, SIGINT)
        }
        #expect(first.status == 130, "stderr: \(first.stderr)")
        #expect(first.stderr.contains("stopping after the running trials finish"))
        #expect(first.stdout.contains("Resume with: autotune resume grid12"))
        let doneBefore = try String(contentsOf: done, encoding: .utf8).split(separator: "\n")
        #expect(doneBefore.count < 12)

        let second = try await autotune(["resume", "grid12"], in: directory)
        #expect(second.status == 0, "stderr: \(second.stderr)")
        #expect(second.stdout.contains("Study 'grid12' completed: 12 completed, 0 failed, 0 pending"))

        let finished = try String(contentsOf: done, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(finished.count == 12)
        #expect(Set(finished) == Set((0..<12).map(String.init)))

        let json = try await autotune(["trials", "grid12", "--format", "json"], in: directory)
        let trials = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(trials.count == 12)
        #expect(trials.allSatisfy { $0["state"] as? String == "completed" })
        let configurations = Set(
            trials.compactMap {
                ($0["configuration"] as? [String: Any]).map { "\($0["level"]!)-\($0["long"]!)-\($0["mode"]!)" }
            })
        #expect(configurations.count == 12)

        let best = try await autotune(["best", "grid12"], in: directory)
        #expect(best.status == 0)
        #expect(best.stdout.contains("score: 3"))
        #expect(best.stdout.contains("/bin/sh -c"))

        let again = try await autotune(["resume", "grid12"], in: directory)
        #expect(again.stdout.contains("already complete"))
    }

    /// Ctrl-C in the first instant, as soon as the database exists and before the loop does: the stop is kept
    /// and applied before the loop's next decision, so at most the trials already started finish (not all six, as
    /// when the signal was lost), the exit is 130, and resume runs the rest, none twice.
    @Test func ctrlCDuringStartUpStopsBeforeAnyTrialAndResumeRunsThemAll() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let done = directory.appendingPathComponent("done.log")
        try """
        name: early
        parallel: 2
        parameters: {level: {type: int, min: 1, max: 6}}
        objective: {maximize: score}
        strategy: grid
        experiment:
          command: [/bin/sh, -c, 'sleep 0.3; echo {trial} >> \(done.path); echo "{{\\"score\\": {level}}}"']
        """.write(to: directory.appendingPathComponent("task.yaml"), atomically: true, encoding: .utf8)
        let database = directory.appendingPathComponent("autotune.sqlite").path
        let first = try await autotune(["run", "task.yaml"], in: directory) { process in
            while process.isRunning, !FileManager.default.fileExists(atPath: database) {
                try await Task.sleep(for: .milliseconds(1))
            }
            kill(process.processIdentifier, SIGINT)
        }
        #expect(first.status == 130, "stderr: \(first.stderr)")
        #expect(first.stdout.contains("Resume with: autotune resume early"), "\(first.stdout)")
        let before = (try? String(contentsOf: done, encoding: .utf8)) ?? ""
        #expect(before.split(separator: "\n").count <= 2, "at most the first two ran: \(before)")

        let second = try await autotune(["resume", "early"], in: directory)
        #expect(second.status == 0, "stderr: \(second.stderr)")
        let finished = try String(contentsOf: done, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(finished.sorted() == (0..<6).map(String.init).sorted(), "every trial once: \(finished)")
    }

    @Test func killingTheRunnerAtRandomMomentsLosesAndRepeatsNothing() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let marker = "autotune-kill-test-\(UUID().uuidString)"
        try """
        name: crashy
        parallel: 2
        parameters:
          level: {type: int, min: 1, max: 3}
          long: {type: bool}
          mode: [a, b]
        objective: {maximize: score}
        strategy: grid
        experiment:
          command: [/bin/sh, -c, 'sleep 0.3; echo "{{\\"score\\": {level}}}"', \(marker), '{long}', '{mode}']
        """.write(to: directory.appendingPathComponent("task.yaml"), atomically: true, encoding: .utf8)
        var generator = SystemRandomNumberGenerator()
        var kills = 0
        var arguments = ["run", "task.yaml", "--quiet"]
        var finished = false
        for _ in 0..<25 {
            let delay = Int.random(in: 50...600, using: &generator)
            let run = try await autotune(arguments, in: directory) { process in
                try await Task.sleep(for: .milliseconds(delay))
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            }
            if run.status == 0 {
                finished = true
                break
            }
            #expect(run.status == 9 || run.terminationReasonIsSignal, "exit \(run.status): \(run.stderr)")
            kills += 1
            // A kill can land before the study exists (even inside its creation): then start it again.
            let exists = try await autotune(["status", "crashy"], in: directory).status == 0
            arguments = exists ? ["resume", "crashy", "--quiet"] : ["run", "task.yaml", "--quiet"]
        }
        if !finished {
            let last = try await autotune(arguments, in: directory)
            #expect(last.status == 0, "stderr: \(last.stderr)")
        }
        #expect(kills >= 3, "the runner was killed only \(kills) times")
        let json = try await autotune(["trials", "crashy", "--format", "json"], in: directory)
        let trials = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(trials.count == 12)
        #expect(Set(trials.compactMap { $0["number"] as? Int }) == Set(0..<12))
        #expect(trials.allSatisfy { $0["state"] as? String == "completed" })
        let points = Set(
            trials.compactMap { trial in
                (trial["configuration"] as? [String: Any]).map { "\($0["level"]!)-\($0["long"]!)-\($0["mode"]!)" }
            })
        #expect(points.count == 12)
        // No experiment of a killed runner is left behind.
        #expect(processes(containing: marker).isEmpty)
        let status = try await autotune(["status", "crashy"], in: directory)
        #expect(status.stdout.contains("completed"))
    }

    @Test func anInvalidTaskFileExitsWithCodeTwoAndItsLocation() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        try """
        name: bad
        parameters:
          level: {type: int, min: 1, max: 3}
        objective: {maximize: score}
        budget: {max_trials: 3}
        experiment: {comand: [echo]}
        """.write(to: directory.appendingPathComponent("bad.yaml"), atomically: true, encoding: .utf8)
        let run = try await autotune(["run", "bad.yaml"], in: directory)
        #expect(run.status == 2)
        #expect(run.stderr.contains("bad.yaml:6:"))
        #expect(run.stderr.contains("experiment.comand: unknown field 'comand' (did you mean 'command'?)"))
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("autotune.sqlite").path))
    }

    @Test func unknownStudiesAndDuplicateNamesExitWithCodeThree() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        try """
        parameters: {n: {type: int, min: 1, max: 2}}
        objective: {minimize: wall_time}
        strategy: grid
        experiment: {command: ["true"]}
        """.write(to: directory.appendingPathComponent("tiny.yaml"), atomically: true, encoding: .utf8)
        let first = try await autotune(["run", "tiny.yaml", "--quiet"], in: directory)
        #expect(first.status == 0, "stderr: \(first.stderr)")
        #expect(first.stdout.contains("Study 'tiny' completed: 2 completed"))
        let duplicate = try await autotune(["run", "tiny.yaml"], in: directory)
        #expect(duplicate.status == 3)
        #expect(duplicate.stderr.contains("a study named 'tiny' exists already"))
        let missing = try await autotune(["best", "nope"], in: directory)
        #expect(missing.status == 3)
        #expect(missing.stderr.contains("no study named 'nope'"))
        let csv = try await autotune(["trials", "tiny", "--format", "csv"], in: directory)
        #expect(csv.stdout.hasPrefix("number,state,score,n,wall_time,attempt,error"))
        let status = try await autotune(["status"], in: directory)
        #expect(status.stdout.contains("tiny"))
        #expect(status.stdout.contains("completed"))
    }
}

extension CLITests {
    /// Ctrl-C at a terminal signals the whole foreground process group: the plug-in must survive it, so the
    /// drain can still ask it to save, and resume must continue the study.
    @Test func aPluginStudyStoppedByCtrlCResumesToItsBudget() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let plugin = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../strategies/reference/random_search.py").standardizedFileURL.path
        let started = directory.appendingPathComponent("started")
        try """
        name: plugged
        parallel: 3
        parameters: {x: {type: float, min: -1, max: 1}, n: {type: int, min: 1, max: 8}}
        objective: {minimize: f}
        strategy: {command: [python3, \(plugin)]}
        budget: {max_trials: 12}
        experiment:
          command: [/bin/sh, -c, 'echo {trial} >> \(started.path); sleep 0.3; echo "{{\\"f\\": {x}}}"', x, '{n}']
        """.write(to: directory.appendingPathComponent("t.yaml"), atomically: true, encoding: .utf8)
        // Its own temporary directory, to see that nothing is left there.
        let temporary = directory.appendingPathComponent("tmp")
        try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: true)
        let environment = ["TMPDIR": temporary.path]
        let first = try await autotune(["run", "t.yaml", "--quiet"], in: directory, environment: environment) {
            process in
            // Once the plug-in has proposed and trials run, so the signal lands mid-study.
            while ((try? String(contentsOf: started, encoding: .utf8)) ?? "").isEmpty {
                try await Task.sleep(for: .milliseconds(20))
            }
            // The terminal's Ctrl-C: to the process group of autotune and its children.
            kill(-process.processIdentifier, SIGINT)
        }
        #expect(first.status == 130, "stderr: \(first.stderr)")
        let second = try await autotune(["resume", "plugged", "--quiet"], in: directory, environment: environment)
        #expect(second.status == 0, "stderr: \(second.stderr)")
        #expect(second.stdout.contains("12 completed"))
        let left = try FileManager.default.contentsOfDirectory(atPath: temporary.path)
        #expect(left.isEmpty, "the plug-in's stderr log outlived the study: \(left)")
    }
}
