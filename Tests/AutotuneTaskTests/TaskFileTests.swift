import Autotune
import AutotuneTask
import Foundation
import Testing

private let here = URL(fileURLWithPath: "/work/here")

private func parse(_ text: String) throws(TaskFileError) -> StudyDefinition {
    try TaskFile.parse(text, file: "task.yaml", workingDirectory: here)
}

/// The error a task file gives, failing the test when it parses.
private func parseError(_ text: String) -> TaskFileError? {
    do {
        _ = try parse(text)
        Issue.record("the task file parsed, but should not have")
        return nil
    } catch {
        return error
    }
}

private let valid = """
    name: zstd
    seed: 7
    parallel: 2
    parameters:
      level: {type: int, min: 1, max: 19}
      threads: {type: int, min: 1, max: 8, step: 1, log: true, flag: -T}
      ratio_goal: {type: float, min: 0.5, max: 0.9}
      mode: [fast, "8", 16]
      long: {type: bool}
      model: /models/llama
    objective:
      maximize: {throughput: 1, wall_time: -0.5}
      constraints:
        - {metric: ratio, min: 2.6}
        - {metric: p99, max: 500, on_violation: penalize, penalty: 0.1}
    strategy: {name: grid, order: declared, resolution: 3}
    budget: {max_trials: 12, max_duration: 1h30m}
    timeouts: {trial: 90s, kill_grace: 500ms}
    on_lost_trial: fail
    experiment:
      command: [zstd, "-b{level}", "{model}", "{trial_dir}/out"]
      env: {LEVEL: "{level}"}
      workdir: data
      metrics:
        stdout_json: false
        file: "{trial_dir}/metrics.json"
        patterns: {ratio: '\\(([0-9.]+)\\)'}
    """

@Suite struct TaskFileTests {
    @Test func aCompleteFileBecomesADefinition() throws {
        let definition = try parse(valid)
        #expect(definition.name == "zstd")
        #expect(definition.seed == 7)
        #expect(definition.parallel == 2)
        #expect(definition.space.parameters.map(\.name) == ["level", "threads", "ratio_goal", "mode", "long", "model"])
        #expect(definition.space["threads"]?.domain == .int(lower: 1, upper: 8, step: 1, log: true))
        #expect(definition.space["threads"]?.flagName == "-T")
        #expect(definition.space["mode"]?.domain == .categorical([.string("fast"), .string("8"), .int(16)]))
        #expect(definition.space["model"]?.domain == .fixed(.string("/models/llama")))
        #expect(definition.objective.direction == .maximize)
        #expect(Set(definition.objective.terms.map(\.metric)) == ["throughput", "wall_time"])
        #expect(definition.objective.constraints.count == 2)
        #expect(definition.objective.constraints[1].enforcement == .soft(penalty: 0.1))
        #expect(
            definition.strategy
                == StrategySpec(name: "grid", options: ["order": .string("declared"), "resolution": .number(3)]))
        #expect(definition.budget == Budget(maxTrials: 12, maxTime: .seconds(5400)))
        #expect(definition.timeouts == Timeouts(trial: .seconds(90), killGrace: .milliseconds(500)))
        #expect(definition.lostTrials == .fail)
        guard case .command(let command) = definition.experiment else {
            Issue.record("the experiment did not parse as a command: \(definition.experiment)")
            return
        }
        #expect(command.program.command.map(\.text) == ["zstd", "-b{level}", "{model}", "{trial_dir}/out"])
        #expect(command.program.placedParameters == ["level", "model", "trial_dir"])
        #expect(command.program.workingDirectory?.text == "/work/here/data")
        #expect(command.metrics.stdoutJSON == false)
        #expect(command.metrics.patterns["ratio"] == #"\(([0-9.]+)\)"#)
    }

    @Test func jsonIsAcceptedToo() throws {
        let definition = try parse(
            #"""
            {"name": "j", "parameters": {"n": {"type": "int", "min": 1, "max": 4}},
             "objective": {"minimize": "wall_time"}, "budget": {"max_trials": 3},
             "experiment": {"command": ["true"]}}
            """#
        )
        #expect(definition.space["n"]?.domain == .int(lower: 1, upper: 4))
        #expect(definition.objective == .minimize("wall_time"))
        #expect(definition.strategy.name == "random")
    }

    @Test func aMisspeltFieldIsNamedWithItsLineAndASuggestion() throws {
        let error = try #require(parseError(valid.replacingOccurrences(of: "parallel: 2", with: "paralel: 2")))
        #expect(error.line == 3)
        #expect(error.field == "paralel")
        #expect(error.message.contains("did you mean 'parallel'?"))
        #expect(error.description.hasPrefix("task.yaml:3:"))
    }

    @Test func aWrongTypeNamesTheNestedField() throws {
        let error = try #require(parseError(valid.replacingOccurrences(of: "max: 19", with: "max: nineteen")))
        #expect(error.line == 5)
        #expect(error.field == "parameters.level.max")
        #expect(error.message == "expected an integer, got 'nineteen'")
    }

    @Test func aMissingFieldSaysWhatIsExpected() throws {
        let error = try #require(
            parseError(valid.replacingOccurrences(of: "{type: int, min: 1, max: 19}", with: "{type: int, min: 1}")))
        #expect(error.field == "parameters.level.max")
        #expect(error.message.contains("missing required field 'max'"))
        #expect(error.line == 5)
    }

    @Test func aCommandStringIsRefusedBecauseThereIsNoShell() throws {
        let error = try #require(
            parseError(
                valid.replacingOccurrences(
                    of: #"command: [zstd, "-b{level}", "{model}", "{trial_dir}/out"]"#, with: "command: zstd -b3")))
        #expect(error.field == "experiment.command")
        #expect(error.message.contains("list of arguments"))
    }

    @Test func anUnknownPlaceholderIsNamed() throws {
        let error = try #require(parseError(valid.replacingOccurrences(of: "-b{level}", with: "-b{levle}")))
        #expect(error.field == "experiment.command[1]")
        #expect(error.line == 21)
        #expect(error.message.contains("unknown placeholder {levle}"))
    }

    @Test(arguments: [
        ("max_duration: 1h30m", "max_duration: soon", "budget.max_duration", "expected a duration"),
        ("on_lost_trial: fail", "on_lost_trial: retry", "on_lost_trial", "expected 'requeue' or 'fail'"),
        ("{type: bool}", "{type: boolean}", "parameters.long.type", "unknown parameter type 'boolean'"),
        ("{type: bool}", "{type: bool, min: 1}", "parameters.long.min", "does not apply"),
        ("min: 0.5, max: 0.9", "min: 0.9, max: 0.5", "parameters.ratio_goal", "min 0.9 is above max 0.5"),
        (#"'\(([0-9.]+)\)'"#, "'[0-9.]+'", "experiment.metrics.patterns.ratio", "no capture group"),
        (
            "maximize: {throughput: 1, wall_time: -0.5}", "maximise: throughput", "objective.maximise",
            "did you mean 'maximize'?"
        ),
        ("parallel: 2", "parallel: 0", "parallel", "expected an integer from 1"),
    ])
    func badValuesAreExplained(original: String, replacement: String, field: String, message: String) throws {
        let text = valid.replacingOccurrences(of: original, with: replacement)
        #expect(text != valid)
        let error = try #require(parseError(text))
        #expect(error.field == field)
        #expect(error.message.contains(message), "got: \(error.message)")
        #expect(error.line != nil)
    }

    @Test func aSyntaxErrorHasALine() throws {
        let error = try #require(parseError("name: x\nparameters: {a: [1, 2\nobjective: {}\n"))
        #expect(error.line != nil)
        #expect(error.message.hasPrefix("syntax error"))
    }

    @Test func randomSearchNeedsABudget() throws {
        let text = valid.replacingOccurrences(
            of: "strategy: {name: grid, order: declared, resolution: 3}", with: "strategy: random"
        )
        .replacingOccurrences(of: "budget: {max_trials: 12, max_duration: 1h30m}\n", with: "")
        let error = try #require(parseError(text))
        #expect(error.message.contains("only grid search ends by itself"))
    }

    @Test func aFileThatCannotBeReadSaysSo() {
        let error = #expect(throws: TaskFileError.self) {
            try TaskFile.load(path: "/nonexistent/task.yaml", workingDirectory: here)
        }
        #expect(
            error?.description.hasPrefix("/nonexistent/task.yaml") == true,
            "names the file: \(String(describing: error))")
        #expect(error?.description.contains("cannot read the file") == true, "says why: \(String(describing: error))")
    }
}

@Suite struct ObjectivesTaskFileTests {
    private func file(_ objective: String) -> String {
        """
        name: front
        parameters:
          batch: {type: int, min: 1, max: 64}
        \(objective)
        budget: {max_trials: 10}
        experiment: {command: [echo, "{batch}"]}
        """
    }

    @Test func aListOfObjectivesAtTheTopOrBesideTheConstraintsBecomesGoals() throws {
        let top = try parse(file("objectives:\n  - maximize: tps\n  - minimize: {ttft: 1, tpot: 2}"))
        #expect(
            top.objective.goals == [
                .maximize("tps"),
                Objective.Goal(
                    .minimize,
                    terms: [
                        Objective.Term(metric: "ttft"), Objective.Term(metric: "tpot", weight: 2),
                    ]),
            ])
        #expect(top.objective.direction == .maximize)
        #expect(top.objective.terms == [Objective.Term(metric: "tps")])
        let nested = try parse(
            file(
                """
                objective:
                  objectives: [{maximize: tps}, {minimize: ttft_ms_p99}]
                  constraints: [{metric: ttft_ms_p99, max: 800}]
                """))
        #expect(nested.objective.goals == [.maximize("tps"), .minimize("ttft_ms_p99")])
        #expect(nested.objective.constraints == [MetricConstraint(metric: "ttft_ms_p99", maximum: 800)])
        // A top-level list with the constraints in objective:
        let split = try parse(
            file("objectives: [{maximize: tps}, {minimize: ttft}]\nobjective: {constraints: [{metric: ttft, max: 9}]}"))
        #expect(split.objective.isMultiObjective)
        #expect(split.objective.constraints.count == 1)
    }

    @Test(arguments: [
        ("objectives: [{maximize: tps}]", 4, "at least two objectives"),
        ("objectives: [{maximize: tps}, {maximize: tps}]", 4, "listed twice"),
        ("objectives: [{maximize: tps}, {fastest: ttft}]", 4, "unknown field 'fastest'"),
        ("objectives: [{maximize: tps}, {maximize: a, minimize: b}]", 4, "either maximize or minimize"),
        (
            "objective:\n  maximize: tps\n  objectives: [{maximize: a}, {minimize: b}]", 5,
            "either one objective (maximize or minimize) or a list"
        ),
    ])
    func badObjectivesAreRefusedWhereTheyAre(text: String, line: Int, message: String) throws {
        let error = try #require(parseError(file(text)))
        #expect(error.message.contains(message), "\(error)")
        #expect(error.line == line, "\(error)")
    }
}

@Suite struct ConfirmTaskFileTests {
    private func file(_ confirm: String, objective: String = "objective: {maximize: tps}") -> String {
        """
        name: confirmed
        parameters:
          batch: {type: int, min: 1, max: 64}
        \(objective)
        budget: {max_trials: 10}
        \(confirm)
        experiment: {command: [echo, "{batch}"]}
        """
    }

    @Test func confirmTakesTheTopTheRepeatsAndTheRanking() throws {
        #expect(try parse(file("")).confirm == nil)
        #expect(try parse(file("confirm: {}")).confirm == ConfirmationPhase(top: 3, repeats: 3, rankBy: .mean))
        #expect(
            try parse(file("confirm: {top: 5, repeats: 2, rank_by: worst}")).confirm
                == ConfirmationPhase(top: 5, repeats: 2, rankBy: .worst))
    }

    @Test(arguments: [
        ("confirm: {top: 0}", "confirm.top"),
        ("confirm: {repeats: 1000}", "confirm.repeats"),
        ("confirm: {rank_by: median}", "expected 'mean' or 'worst'"),
        ("confirm: {tops: 3}", "tops"),
        ("confirm: 3", "confirm"),
    ])
    func aBadConfirmSaysWhere(text: String, expected: String) {
        let error = parseError(file(text))
        #expect(error?.description.contains(expected) == true, "\(String(describing: error))")
        #expect(error?.description.contains("task.yaml:") == true, "\(String(describing: error))")
    }

    @Test func severalObjectivesCannotBeConfirmedByOneScore() {
        let error = parseError(file("confirm: {top: 2}", objective: "objectives: [{maximize: tps}, {minimize: ttft}]"))
        #expect(error?.description.contains("several objectives") == true, "\(String(describing: error))")
    }
}

/// What `validate` used to accept and only a run found wrong.
@Suite struct RunTimeMistakesTaskFileTests {
    private let head = """
        parameters: {tp: [1, 2, 4, 8]}
        budget: {max_trials: 3}
        experiment: {command: [/bin/echo, x]}

        """

    @Test func aNumberOrABooleanIsNoMetricName() throws {
        for value in ["-1", "true", "3.5", "null"] {
            let error = try #require(parseError(head + "objective: {maximize: \(value)}\n"))
            #expect(error.description.contains("expected a metric's name"), "\(value): \(error)")
            #expect(error.line == 4, "\(value): \(error)")
        }
        let constraint = try #require(
            parseError(head + "objective: {maximize: y, constraints: [{metric: 12, max: 3}]}\n"))
        #expect(constraint.description.contains("expected a metric's name"), "\(constraint)")
        // A quoted number is what was meant: still no metric's name.
        let quoted = try #require(parseError(head + "objective: {maximize: '9x'}\n"))
        #expect(quoted.description.contains("starts with a letter"), "\(quoted)")
    }

    @Test func negativeFreeMemoryIsRefused() throws {
        let error = try #require(
            parseError(head + "objective: {maximize: y}\nresources: {gpus_per_trial: 1, min_free_memory: -5}\n"))
        #expect(error.description.contains("min_free_memory") && error.description.contains("at least 0"), "\(error)")
    }

    @Test func moreGPUsPerTrialThanThePoolIsRefused() throws {
        let fixed = try #require(
            parseError(head + "objective: {maximize: y}\nresources: {gpus: [0, 1, 2, 3], gpus_per_trial: 8}\n"))
        #expect(fixed.description.contains("asks for 8 GPUs per trial but resources.gpus lists 4"), "\(fixed)")
        let product = try #require(
            parseError(head + "objective: {maximize: y}\nresources: {gpus: [0, 1, 2, 3], gpus_per_trial: [tp]}\n"))
        #expect(product.description.contains("tp reaches 8 GPUs but resources.gpus lists 4"), "\(product)")
        #expect(product.description.contains("'tp <= gpus'"), "\(product)")
        // With the constraint the pool bounds it, and the file is valid.
        _ = try parse(
            head.replacingOccurrences(
                of: "parameters: {tp: [1, 2, 4, 8]}",
                with: "parameters: {tp: [1, 2, 4, 8]}\nconstraints: ['tp <= gpus']")
                + "objective: {maximize: y}\nresources: {gpus: [0, 1, 2, 3], gpus_per_trial: [tp]}\n")
    }
}

@Suite struct ExecutionTaskFileTests {
    private func file(_ execution: String) -> String {
        """
        name: placed
        parameters:
          batch: {type: int, min: 1, max: 64}
        objective: {maximize: tps}
        budget: {max_trials: 10}
        \(execution)
        experiment: {command: [not-installed-here, "{batch}"]}
        """
    }

    @Test func executionSaysWhereTrialsRunAndASchedulersNodesHaveTheirOwnPrograms() throws {
        let ray = try TaskFile.parse(
            file(
                """
                execution:
                  ray:
                    address: http://head:8265
                    runtime_env: {env_vars: {HF_HOME: /cache}, pip: [vllm]}
                    num_cpus: 4
                    resources: {h100: 1}
                """), file: "task.yaml", workingDirectory: here, programs: { _ in "not installed" })
        #expect(
            ray.execution
                == .ray(
                    RayExecution(
                        address: "http://head:8265",
                        runtimeEnvironment: [
                            "env_vars": .object(["HF_HOME": .string("/cache")]), "pip": .array([.string("vllm")]),
                        ],
                        cpus: 4, resources: ["h100": 1])))
        #expect(
            try parse(file("execution: {slurm: {partition: gpu, arguments: [--account=ml]}}")).execution
                == .slurm(partition: "gpu", arguments: ["--account=ml"]))
        #expect(try parse(file("execution: {slurm: true}")).execution == .slurm(partition: nil, arguments: []))
        #expect(try parse(file("")).execution == nil)
        // Run here, the program must exist here.
        #expect(throws: TaskFileError.self) {
            try TaskFile.parse(
                file("execution: local"), file: "task.yaml", workingDirectory: here,
                programs: { _ in "not installed" })
        }
    }

    @Test(arguments: [
        ("execution: {ray: {}}", "execution.ray.address"),
        ("execution: {ray: {address: h, runtime_env: [pip]}}", "expected a mapping"),
        ("execution: {ray: {address: h, resources: {h100: 0}}}", "execution.ray.resources.h100"),
        ("execution: {ray: {address: h, num_gpus: 1}}", "num_gpus"),
        ("execution: {slurm: {}, ray: {address: h}}", "not both"),
        ("execution: kubernetes", "expected 'local'"),
    ])
    func aBadExecutionSaysWhere(text: String, expected: String) {
        let error = parseError(file(text))
        #expect(error?.description.contains(expected) == true, "\(String(describing: error))")
        #expect(error?.description.contains("task.yaml:") == true, "\(String(describing: error))")
    }
}
