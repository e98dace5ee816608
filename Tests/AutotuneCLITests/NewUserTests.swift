import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// What a new user sees, through the real binary: the cause of failures, tables and numbers people can read,
/// validation that catches tasks that can only fail, fail-fast, hints that work, and the small commands.
@Suite(.serialized, .timeLimit(.minutes(5))) struct NewUserTests {
    private func directory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("autotune-new-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    private func write(_ text: String, _ name: String = "t.yaml", in directory: URL) throws {
        try text.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
    }

    /// A command that fails like an engine refusing a configuration: a traceback on stderr, the error last.
    private let refusing = """
        name: refuse
        parallel: 2
        fail_fast: false
        parameters: {level: {type: int, min: 1, max: 4}, ratio: {type: float, min: 0.85, max: 0.97}}
        objective: {maximize: score}
        strategy: {name: random}
        budget: {max_trials: 4}
        experiment:
          command:
            - /bin/sh
            - -c
            - |
              if [ {level} -gt 2 ]; then
                echo 'Traceback (most recent call last):' >&2
                echo '  File "engine.py", line 12, in <module>' >&2
                echo 'ValueError: No available memory for the cache blocks' >&2
                echo 'shutting down' >&2
                exit 1
              fi
              echo '{{"score": 28413.7, "other": 0.000012345}}'
            - x
        """

    @Test func theCauseOfAFailureIsOnScreenInLinesTrialsAndStatus() async throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try write(refusing, in: directory)
        let run = try await autotune(["run", "t.yaml"], in: directory)
        let failing = run.stderr.split(separator: "\n").filter { $0.contains(" failed (") }
        #expect(!failing.isEmpty, "\(run.stderr)")
        #expect(
            failing.allSatisfy { $0.contains("ValueError: No available memory for the cache blocks") }, "\(run.stderr)")
        let trials = try await autotune(["trials", "refuse"], in: directory)
        #expect(trials.stdout.contains("run: exit status 1: ValueError: No available memory for the cache blocks"))
        let status = try await autotune(["status"], in: directory)
        #expect(status.stdout.contains("latest failure") && status.stdout.contains("ValueError: No available memory"))
    }

    @Test func tablesShowTheObjectivesMetricsAndNumbersForPeople() async throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try write(refusing.replacingOccurrences(of: "max: 4}", with: "max: 2}"), in: directory)
        #expect(try await autotune(["run", "t.yaml", "--quiet"], in: directory).status == 0)
        let table = try await autotune(["trials", "refuse"], in: directory)
        let header = try #require(table.stdout.split(separator: "\n").first)
        #expect(
            header.split(separator: " ", omittingEmptySubsequences: true) == [
                "number", "state", "score", "level", "ratio", "error",
            ], "\(header)")
        #expect(!header.contains("other") && !header.contains("wall_time"), "\(header)")
        #expect(table.stdout.contains("28414") && !table.stdout.contains("e+04"), "\(table.stdout)")
        // A float parameter at the precision its range calls for: 0.85–0.97 → four decimals.
        let ratio = try #require(
            table.stdout.split(separator: "\n").dropFirst().first?.split(separator: " ").map(String.init))
        #expect(ratio.contains { $0.hasPrefix("0.") && $0.count <= 6 }, "\(ratio)")
        let all = try await autotune(["trials", "refuse", "--all-metrics"], in: directory)
        #expect(all.stdout.contains("other") && all.stdout.contains("1.234e-05"))
        let picked = try await autotune(
            ["trials", "refuse", "--columns", "number,score", "--sort=-number", "--top", "1"], in: directory)
        #expect(picked.stdout.split(separator: "\n").count == 2, "\(picked.stdout)")
        let wrong = try await autotune(["trials", "refuse", "--columns", "scor"], in: directory)
        #expect(wrong.status == 2 && wrong.stderr.contains("did you mean 'score'"))
        let csv = try await autotune(["trials", "refuse", "--format", "csv"], in: directory)
        #expect(csv.stdout.contains("28413.7") && csv.stdout.contains("1.2345e-05"), "\(csv.stdout)")
        let json = try await autotune(["trials", "refuse", "--format", "json"], in: directory)
        #expect(json.stdout.range(of: #"\.\d{3}Z""#, options: .regularExpression) != nil, "milliseconds are kept")
        #expect(!json.stdout.contains("\\/"))
    }

    @Test func bestShowsTheObjectivesMetricsAndItsGainOverTheBaseline() async throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try write(
            """
            name: gain
            parameters: {level: {type: int, min: 1, max: 4}}
            objective: {maximize: score}
            baseline: {level: 1}
            strategy: grid
            experiment: {command: [/bin/sh, -c, 'echo "{{\\"score\\": {level}, \\"noise\\": 3}}"', x]}
            """, in: directory)
        #expect(try await autotune(["run", "t.yaml", "--quiet"], in: directory).status == 0)
        let text = try await autotune(["best", "gain"], in: directory)
        #expect(text.stdout.contains("score: 4") && text.stdout.contains("300.0% better"), "\(text.stdout)")
        #expect(!text.stdout.contains("noise:"))
        #expect(try await autotune(["best", "gain", "--all-metrics"], in: directory).stdout.contains("noise: 3"))
        let json = try await autotune(["best", "gain", "--format", "json"], in: directory)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let gain = try #require(object["gain"] as? [String: Any])
        #expect(gain["fraction"] as? Double == 3 && gain["baselineScore"] as? Double == 1, "\(gain)")
    }

    @Test func validationCatchesTasksThatCanOnlyFail() async throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try write(
            """
            parameters: {n: {type: int, min: 1, max: 4}}
            objective: {maximize: output_tokens_per_s_per_gpu, constraints: [{metric: ttft_p99_ms, max: 500}]}
            budget: {max_trials: 2}
            experiment:
              kind: serving
              server: {command: ["{autotune}", simulate, --port, "{port}"]}
              benchmark: {concurrency: 8}
            """, in: directory)
        let metric = try await autotune(["validate", "t.yaml"], in: directory)
        #expect(metric.status == 2)
        #expect(
            metric.stderr.contains("t.yaml:2:") && metric.stderr.contains("did you mean 'ttft_ms_p99'"),
            "\(metric.stderr)")
        try write(
            "parameters: {n: [1, 2]}\nobjective: {maximize: score}\nstrategy: grid\nexperiment: {command: [no-such-program-xyz, '{n}']}\n",
            "u.yaml", in: directory)
        let program = try await autotune(["validate", "u.yaml"], in: directory)
        #expect(
            program.status == 2 && program.stderr.contains("'no-such-program-xyz' is not found on PATH"),
            "\(program.stderr)")
        try write(
            "parameters: {n: [1, 2]}\nobjective: {maximize: score}\nstrategy: grid\nexperiment: {command: [/bin/echo, '{{\"scor\": 1}}']}\n",
            "v.yaml", in: directory)
        let plain = try await autotune(["validate", "v.yaml"], in: directory)
        #expect(plain.status == 0 && plain.stdout.contains("1 parameter ("), "\(plain.stdout)")
        let dry = try await autotune(["validate", "v.yaml", "--dry-run"], in: directory)
        #expect(
            dry.status == 4 && dry.stderr.contains("did not report 'score'") && dry.stderr.contains("scor"),
            "\(dry.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("autotune.sqlite").path))
    }

    /// A program that prints its metric in its own format (`score=3`) is told where metrics are read from and
    /// what it printed instead, with the JSON line it should print.
    @Test func aMetricInAnotherFormatSaysWhatWasPrintedAndWhatIsRead() async throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try write(
            """
            name: kv
            parameters: {level: [1, 2]}
            objective: {maximize: score}
            strategy: grid
            experiment: {command: [/bin/sh, -c, 'echo "warming up"; echo "score={level}"', x]}
            """, in: directory)
        let run = try await autotune(["run", "t.yaml"], in: directory)
        #expect(run.status == 4, "\(run.stderr)")
        let failing = run.stderr.split(separator: "\n").filter { $0.contains(" failed (") }
        #expect(failing.count == 2, "\(run.stderr)")
        for line in failing {
            #expect(line.contains("metric 'score' was not reported"), "\(line)")
            #expect(line.contains("stdout has no JSON object line (its last line: 'score="), "\(line)")
            #expect(line.contains(#"print one, as {"score": 1.5}, or read it with experiment.metrics"#), "\(line)")
        }
    }

    /// A metric line with a value JSON cannot hold is named as such, not as "no JSON object line"; a program that
    /// prints megabytes before its metrics still has them read.
    @Test func aMetricThatIsNotAFiniteNumberIsNamedAndLongOutputIsRead() async throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try write(
            """
            name: odd
            parameters: {v: [NaN, 1e400, Infinity]}
            objective: {maximize: score}
            strategy: {name: grid, order: declared}
            fail_fast: false
            experiment: {command: [/bin/sh, -c, 'echo "{{\\"score\\": {v}}}"', x]}
            """, in: directory)
        let run = try await autotune(["run", "t.yaml"], in: directory)
        let failing = run.stderr.split(separator: "\n").filter { $0.contains(" failed (") }
        #expect(failing.count == 3, "\(run.stderr)")
        for (line, value) in zip(failing, ["NaN", "1e400", "Infinity"]) {
            #expect(line.contains("'score' is \(value), which is not a finite number"), "\(line)")
        }
        try write(
            """
            name: loud
            parameters: {n: [1, 2]}
            objective: {maximize: score}
            strategy: grid
            experiment: {command: [/bin/sh, -c, 'head -c 20000000 /dev/zero | tr "\\\\0" "x"; echo; echo "{{\\"score\\": {n}}}"', x]}
            """, in: directory)
        let loud = try await autotune(["run", "t.yaml", "--quiet"], in: directory)
        #expect(loud.status == 0, "\(loud.stderr)")
        #expect(loud.stdout.contains("Best: trial") && loud.stdout.contains("score=2"), "\(loud.stdout)")
    }

    @Test func trialsThatAllFailTheSameWayStopTheStudyEarly() async throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try write(
            """
            name: broken
            parameters: {n: {type: int, min: 1, max: 100}}
            objective: {maximize: score}
            budget: {max_trials: 50}
            experiment: {command: [/bin/sh, -c, 'echo "zstd: error 11: unknown flag" >&2; exit 1']}
            """, in: directory)
        let run = try await autotune(["run", "t.yaml", "--db", "x.sqlite", "--quiet"], in: directory)
        #expect(run.status == 4, "\(run.stderr)")
        #expect(run.stderr.contains("the last 5 trials all failed the same way") && run.stderr.contains("unknown flag"))
        #expect(run.stderr.contains("autotune resume broken --db"), "hints name the database: \(run.stderr)")
        let json = try await autotune(["trials", "broken", "--format", "json", "--db", "x.sqlite"], in: directory)
        let trials = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(trials.count < 10, "\(trials.count) trials ran")
    }

    @Test func smallCommandsAndFlags() async throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(
            try await autotune(["--version"], in: directory).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                .first?.isNumber == true)
        try write(
            "name: s\nparameters: {n: {type: int, min: 1, max: 1000}}\nobjective: {maximize: score}\nbudget: {max_trials: 3}\nexperiment: {command: [/bin/sh, -c, 'echo \"{{\\\"score\\\": {n}}}\"', x]}\n",
            in: directory)
        #expect(
            try await autotune(["run", "t.yaml", "--seed", "7", "--study", "seven", "--quiet"], in: directory).status
                == 0)
        #expect(
            try await autotune(["run", "t.yaml", "--seed", "7", "--study", "again", "--quiet"], in: directory).status
                == 0)
        let a = try await autotune(["trials", "seven", "--format", "csv", "--columns", "n"], in: directory).stdout
        let b = try await autotune(["trials", "again", "--format", "csv", "--columns", "n"], in: directory).stdout
        #expect(a == b, "the same seed gives the same study")
        try write(
            "parameters: {n: [1, 2]}\nobjective: {maximize: score}\nstrategy: {name: random, seed: 3}\nbudget: {max_trials: 1}\nexperiment: {command: [true]}\n",
            "u.yaml", in: directory)
        let seed = try await autotune(["validate", "u.yaml"], in: directory)
        #expect(seed.status == 2 && seed.stderr.contains("top-level field"), "\(seed.stderr)")
        let refused = try await autotune(["delete", "seven"], in: directory)
        #expect(refused.status != 0 && refused.stderr.contains("--yes"))
        let deleted = try await autotune(["delete", "seven", "--yes"], in: directory)
        #expect(deleted.status == 0, "\(deleted.stderr)")
        #expect(try await autotune(["status", "seven"], in: directory).status == 3)
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("autotune-trials/seven").path))
    }

    @Test func speedupMeasuresAgainstParallelOneAndTimeToTarget() async throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try write(
            "parameters: {n: [1, 2, 3, 4]}\nobjective: {maximize: score}\nstrategy: grid\nexperiment: {command: [/bin/sh, -c, 'sleep 0.2; echo \"{{\\\"score\\\": {n}}}\"', x]}\n",
            in: directory)
        let run = try await autotune(
            ["speedup", "t.yaml", "--parallel", "2", "--repeat", "2", "--format", "csv", "--report", "s.html"],
            in: directory)
        #expect(run.status == 0, "\(run.stderr)")
        let lines = run.stdout.split(separator: "\n")
        #expect(lines.first?.contains("time_to_target_s") == true && lines.first?.contains("wall_spread_s") == true)
        #expect(lines.count == 3 && lines[1].hasPrefix("1 (reference),2,"), "\(run.stdout)")
        // The chart has a marker per level in each of its two charts: speedup, and efficiency.
        let html = try String(contentsOf: directory.appendingPathComponent("s.html"), encoding: .utf8)
        for chart in ["speedup", "efficiency"] {
            let start = try #require(html.range(of: "data-chart=\"\(chart)\""), "no \(chart) chart")
            let body = html[start.upperBound...]
            let svg = body[..<(body.range(of: "</svg>")?.lowerBound ?? body.endIndex)]
            #expect(svg.components(separatedBy: "class=\"point").count - 1 == 2, "\(chart): \(svg)")
        }
        #expect(html.contains("parallel 2: "), "the tooltip names the level")
    }

    /// On a terminal the bar redraws every second while a long trial runs, so its clock moves.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/script")))
    func theLiveBarMovesOnATerminal() async throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try write(
            "parameters: {n: [1]}\nobjective: {maximize: score}\nstrategy: grid\nexperiment: {command: [/bin/sh, -c, 'sleep 3.2; echo \"{{\\\"score\\\": 1}}\"']}\n",
            in: directory)
        // `script` gives autotune a pseudo-terminal; its output is what a terminal would have shown.
        let run = try await command(
            "/usr/bin/script", ["-qfec", "\(executable.path) run t.yaml", "/dev/null"], in: directory)
        #expect(run.status == 0, "\(run.stdout)")
        let bars = run.stdout.components(separatedBy: "\r\u{1B}[2K").filter {
            $0.hasPrefix("[") && $0.contains("running 1")
        }
        let clocks = Set(
            bars.compactMap { bar in bar.range(of: #"· \d+\.\ds"#, options: .regularExpression).map { String(bar[$0]) }
            })
        #expect(clocks.count >= 3, "the bar's clock should move: \(bars)")
    }
}

/// Runs any program in `directory` with no input.
func command(_ program: String, _ arguments: [String], in directory: URL) async throws -> Run {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: program)
    process.arguments = arguments
    process.currentDirectoryURL = directory
    let out = directory.appendingPathComponent("cmd-out-\(UUID().uuidString)")
    _ = FileManager.default.createFile(atPath: out.path, contents: nil)
    let handle = try FileHandle(forWritingTo: out)
    defer { try? handle.close() }
    process.standardOutput = handle
    process.standardError = handle
    process.standardInput = FileHandle.nullDevice
    try process.run()
    while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
    return Run(
        status: process.terminationStatus,
        stdout: String(decoding: (try? Data(contentsOf: out)) ?? Data(), as: UTF8.self),
        stderr: "")
}

/// When the fix is in the task file, `resume --task` goes on with the changed file.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ResumeWithTaskTests {
    @Test func aStudyStoppedByItsTaskFileGoesOnWithTheFixedOne() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let broken = """
            name: fixme
            parameters: {n: {type: int, min: 1, max: 50}}
            objective: {maximize: score}
            budget: {max_trials: 8}
            fail_fast: 3
            experiment: {command: [/bin/sh, -c, 'echo "{{\\"scor\\": {n}}}"', x]}
            """
        try broken.write(to: directory.appendingPathComponent("t.yaml"), atomically: true, encoding: .utf8)
        let first = try await autotune(["run", "t.yaml", "--quiet"], in: directory)
        #expect(first.status == 4, "\(first.stderr)")
        #expect(first.stderr.contains("`autotune resume fixme --task FILE`"), "the hint names --task: \(first.stderr)")
        // The fix is in the task file: the metric's name.
        try broken.replacingOccurrences(of: "scor\\", with: "score\\").replacingOccurrences(
            of: "max_trials: 8", with: "max_trials: 10"
        ).write(to: directory.appendingPathComponent("fixed.yaml"), atomically: true, encoding: .utf8)
        let second = try await autotune(["resume", "fixme", "--task", "fixed.yaml", "--quiet"], in: directory)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stderr.contains("changed budget, experiment"), "\(second.stderr)")
        #expect(second.stdout.contains("completed:"), "\(second.stdout)")
        let trials = try await autotune(["trials", "fixme", "--format", "json"], in: directory)
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(trials.stdout.utf8)) as? [[String: Any]])
        #expect(rows.count == 10, "the new budget")
        #expect(rows.filter { $0["state"] as? String == "completed" }.count >= 7)

        // A change the recorded trials cannot survive is refused, naming each field.
        try broken.replacingOccurrences(of: "max: 50", with: "max: 60").replacingOccurrences(
            of: "maximize: score", with: "minimize: score"
        ).write(to: directory.appendingPathComponent("other.yaml"), atomically: true, encoding: .utf8)
        let refused = try await autotune(["resume", "fixme", "--task", "other.yaml"], in: directory)
        #expect(refused.status == 2, "\(refused.stderr)")
        #expect(refused.stderr.contains("parameters:") && refused.stderr.contains("objective:"), "\(refused.stderr)")
        #expect(!refused.stderr.contains("budget"), "\(refused.stderr)")
    }
}
