public import Autotune
public import Foundation
import Yams

/// Reads a task file (YAML, or JSON, which is YAML too) into a ``StudyDefinition``.
///
/// Every problem is a ``TaskFileError`` naming the file, line and field. The schema is documented in
/// docs/task-file.md.
public enum TaskFile {
    /// The placeholders every command template may use besides the parameter names.
    public static let builtInPlaceholders: Set<String> = [
        "trial", "trial_dir", "study", "seed", "port", "gpus", "model", "autotune",
    ]

    /// Reads and validates the file at `path`.
    ///
    /// `workingDirectory` is where the commands run when the file names no `workdir`, and what a relative
    /// `workdir` is resolved against; the definition stores it as an absolute path, so `resume` runs the same
    /// commands from anywhere.
    ///
    /// `strategies`, when given, checks the `strategy:` section (its name and options) against the strategies a
    /// runner knows, so a misspelt strategy or option is reported at its line like every other problem.
    ///
    /// `programs`, when given, checks that each command's program can be run.
    public static func load(
        path: String,
        workingDirectory: URL,
        strategies: StrategyCheck? = nil,
        programs: ProgramCheck? = nil
    ) throws(TaskFileError) -> (StudyDefinition, String) {
        let data: Data
        do {
            let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
            guard size <= maximumSize else {
                throw TaskFileError(
                    file: path, line: 1, column: 1, field: "",
                    message: "the file is \(size / 1024) KiB; a task file is at most \(maximumSize / 1024 / 1024) MiB")
            }
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch let error as TaskFileError {
            throw error
        } catch {
            throw TaskFileError(
                file: path, line: 1, column: 1, field: "",
                message: "cannot read the file (\(error.localizedDescription))")
        }
        let text = try decode(data, file: path)
        let fallbackName = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        let definition = try parse(
            text, file: path, defaultName: fallbackName, workingDirectory: workingDirectory, strategies: strategies,
            programs: programs)
        return (definition, text)
    }

    /// The largest task file read: real ones are a few KiB, and a parser given hundreds of MiB takes minutes.
    public static let maximumSize = 4 << 20

    /// Checks a strategy spec against the strategies a runner knows; throws what is wrong with it.
    public typealias StrategyCheck = (StrategySpec, StrategyContext) throws -> Void

    /// The file's text, refusing bytes that are not UTF-8 and NUL characters at their line and column.
    static func decode(_ data: Data, file: String) throws(TaskFileError) -> String {
        let bytes = [UInt8](data)
        if let index = bytes.firstIndex(of: 0) {
            let (line, column) = position(of: index, in: bytes)
            throw TaskFileError(file: file, line: line, column: column, field: "", message: "the file holds a NUL byte")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            let (line, column) = position(of: firstInvalidUTF8(bytes) ?? 0, in: bytes)
            throw TaskFileError(
                file: file, line: line, column: column, field: "", message: "the file is not UTF-8 text here")
        }
        return text
    }

    /// Where the first malformed UTF-8 sequence starts (a stray continuation byte, a sequence cut short), or
    /// `nil` when the bytes are well formed in shape.
    private static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int? {
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            let length =
                byte < 0x80 ? 1 : byte & 0xE0 == 0xC0 ? 2 : byte & 0xF0 == 0xE0 ? 3 : byte & 0xF8 == 0xF0 ? 4 : 0
            guard length > 0, index + length <= bytes.count,
                bytes[(index + 1)..<(index + length)].allSatisfy({ $0 & 0xC0 == 0x80 })
            else { return index }
            index += length
        }
        return nil
    }

    /// The 1-based line and column (in bytes) of `index`.
    private static func position(of index: Int, in bytes: [UInt8]) -> (Int, Int) {
        var line = 1
        var lineStart = 0
        for offset in 0..<min(index, bytes.count) where bytes[offset] == 10 {
            line += 1
            lineStart = offset + 1
        }
        return (line, index - lineStart + 1)
    }

    /// Validates task-file text; `file` is only used in error messages.
    public static func parse(
        _ text: String,
        file: String,
        defaultName: String = "study",
        workingDirectory: URL,
        strategies: StrategyCheck? = nil,
        programs: ProgramCheck? = nil
    ) throws(TaskFileError) -> StudyDefinition {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw TaskFileError(file: file, line: 1, column: 1, field: "", message: "the file is empty")
            }
            root = node
        } catch let error as TaskFileError {
            throw error
        } catch let error as YamlError {
            throw syntaxError(error, file: file)
        } catch {
            throw TaskFileError(file: file, field: "", message: "not valid YAML or JSON: \(error)")
        }
        let top = try TaskNode(node: root, path: "", file: file).fields(allowed: [
            "name", "seed", "parallel", "parameters", "constraints", "objective", "objectives", "strategy", "budget",
            "timeouts",
            "on_lost_trial", "fail_fast", "experiment", "resources", "baseline", "confirm", "execution",
        ])
        let name = try top["name"]?.nonEmptyString() ?? defaultName
        if let problem = studyNameProblem(name) { throw (top["name"] ?? top.owner).error(problem) }
        let space = try parameters(
            try top.required("parameters", "a mapping of parameter names to their ranges"),
            constraints: top["constraints"])
        let objectiveNode: TaskNode
        if let node = top["objective"] ?? top["objectives"] {
            objectiveNode = node
        } else {
            objectiveNode = try top.required("objective", "e.g. maximize: throughput, or objectives: [a list]")
        }
        let objective = try objective(objectiveNode, list: top["objective"] == nil ? nil : top["objectives"])
        let strategy = try strategy(top["strategy"])
        if let strategies, let check = top["strategy"] ?? Optional(top.owner) {
            do {
                try strategies(
                    strategy, StrategyContext(space: space, objective: objective, seed: 0, options: strategy.options))
            } catch {
                throw Self.strategyProblem(error, strategy: strategy, node: check)
            }
        }
        let budget = try budget(top["budget"])
        if budget.maxTrials == nil, budget.maxTime == nil, strategy.name != "grid" {
            throw (top["budget"] ?? top.owner).error(
                "give budget.max_trials or budget.max_duration: only grid search ends by itself"
            )
        }
        let experimentNode = try top.required("experiment", "what a trial runs, e.g. command: [...]")
        let experiment: ExperimentSpec
        if case .mapping = experimentNode.node,
            let kind = try experimentNode.mapping().first(where: { $0.key == "kind" }),
            try kind.value.string() == "serving"
        {
            experiment = .serving(try serving(experimentNode, space: space, workingDirectory: workingDirectory))
        } else {
            experiment = .command(try command(experimentNode, space: space, workingDirectory: workingDirectory))
        }
        if case .serving(let serving) = experiment, case .load(let load) = serving.benchmark {
            try checkMetrics(objectiveNode, known: load.reportedMetrics)
            if top["objective"] != nil, let list = top["objectives"] {
                try checkMetrics(list, known: load.reportedMetrics)
            }
        }
        let execution = try execution(top["execution"])
        // A scheduler runs the programs on nodes that have programs of their own.
        if let programs, execution?.schedulerAssignsGPUs != true { try checkPrograms(experimentNode, check: programs) }
        var failFast: Int? = 5
        if let node = top["fail_fast"] {
            if case .scalar(let scalar) = node.node, scalar.style == .plain, scalar.string == "false" {
                failFast = nil
            } else {
                failFast = try node.int(in: 1...10_000)
            }
        }
        var lostTrials = LostTrialPolicy.requeue
        if let node = top["on_lost_trial"] {
            guard let policy = LostTrialPolicy(rawValue: try node.string()) else {
                throw node.error("expected 'requeue' or 'fail'")
            }
            lostTrials = policy
        }
        return StudyDefinition(
            name: name,
            space: space,
            objective: objective,
            strategy: strategy,
            budget: budget,
            parallel: try top["parallel"]?.int(in: 1...4096) ?? 1,
            seed: UInt64(try top["seed"]?.int(in: 0...Int.max) ?? 0),
            timeouts: try timeouts(top["timeouts"]),
            experiment: experiment,
            lostTrials: lostTrials,
            resources: try resources(top["resources"], space: space),
            baseline: try baseline(top["baseline"], space: space),
            failFast: failFast,
            confirm: try confirm(top["confirm"], objective: objective),
            execution: execution
        )
    }

    /// `execution: local`, `execution: {slurm: {partition, arguments}}` or
    /// `execution: {ray: {address, runtime_env, num_cpus, resources}}`.
    private static func execution(_ node: TaskNode?) throws(TaskFileError) -> ExecutionSpec? {
        guard let node else { return nil }
        if case .scalar = node.node {
            guard try node.string() == "local" else {
                throw node.error("expected 'local', or a mapping with slurm: {…} or ray: {address: …}")
            }
            return .local
        }
        let fields = try node.fields(allowed: ["slurm", "ray"])
        if fields["slurm"] != nil, fields["ray"] != nil { throw node.error("give slurm or ray, not both") }
        if let slurm = fields["slurm"] {
            if case .scalar = slurm.node {
                guard try slurm.string() == "true" else { throw slurm.error("expected true or {partition, arguments}") }
                return .slurm(partition: nil, arguments: [])
            }
            let options = try slurm.fields(allowed: ["partition", "arguments"])
            return .slurm(
                partition: try options["partition"]?.nonEmptyString(),
                arguments: try options["arguments"]?.sequence().map { (item) throws(TaskFileError) in
                    try item.nonEmptyString()
                } ?? [])
        }
        guard let ray = fields["ray"] else { throw node.error("expected slurm: {…} or ray: {address: …}") }
        let options = try ray.fields(allowed: ["address", "runtime_env", "num_cpus", "resources"])
        let address = try options.required("address", "the Ray dashboard's address, e.g. http://head:8265")
            .nonEmptyString()
        var environment: [String: JSONValue] = [:]
        if let given = options["runtime_env"] {
            guard case .object(let object) = try given.jsonValue() else {
                throw given.error("expected a mapping (Ray's runtime_env: env_vars, pip, working_dir, …)")
            }
            environment = object
        }
        var resources: [String: Double] = [:]
        if let given = options["resources"] {
            for (name, value) in try given.mapping() {
                let amount = try value.double()
                guard amount > 0 else { throw value.error("expected a positive amount of \(name)") }
                resources[name] = amount
            }
        }
        var cpus: Double?
        if let given = options["num_cpus"] {
            cpus = try given.double()
            guard cpus! >= 0 else { throw given.error("expected 0 or more CPUs") }
        }
        return .ray(RayExecution(address: address, runtimeEnvironment: environment, cpus: cpus, resources: resources))
    }

    /// `confirm: {top: 3, repeats: 3, rank_by: mean}`: the best configurations re-measured after the search.
    private static func confirm(_ node: TaskNode?, objective: Objective) throws(TaskFileError) -> ConfirmationPhase? {
        guard let node else { return nil }
        let fields = try node.fields(allowed: ["top", "repeats", "rank_by"])
        if objective.isMultiObjective {
            throw node.error(
                "confirm ranks configurations by one score; with several objectives the Pareto front is the result (re-run its members as a study of their own)"
            )
        }
        var confirmation = ConfirmationPhase()
        if let top = fields["top"] { confirmation.top = try top.int(in: 1...ConfirmationPhase.limit) }
        if let repeats = fields["repeats"] { confirmation.repeats = try repeats.int(in: 1...ConfirmationPhase.limit) }
        if let rank = fields["rank_by"] {
            guard let ranking = ConfirmationPhase.Ranking(rawValue: try rank.string()) else {
                throw rank.error("expected 'mean' or 'worst'")
            }
            confirmation.rankBy = ranking
        }
        return confirmation
    }

    /// Checks a program name (`zstd`, `vllm`) can be run here; returns what is wrong, or `nil`.
    public typealias ProgramCheck = (String) -> String?

    /// Every metric the objective and its constraints read must be one the benchmark reports: a misspelt one
    /// would fail every trial.
    private static func checkMetrics(_ node: TaskNode, known: Set<String>) throws(TaskFileError) {
        let sorted = known.sorted()
        func check(_ metric: String, at node: TaskNode) throws(TaskFileError) {
            guard !known.contains(metric) else { return }
            let hint = TaskNode.suggestion(for: metric, among: sorted).map { "did you mean '\($0)'? " } ?? ""
            let levels = sorted.filter { !$0.contains(".") }
            throw node.error(
                "the benchmark reports no metric '\(TaskNode.quoted(metric))'; \(hint)it reports: \((levels.isEmpty ? sorted : levels).joined(separator: ", "))"
            )
        }
        if case .sequence = node.node {
            for element in try node.sequence() { try checkMetrics(element, known: known) }
            return
        }
        for (key, value) in try node.mapping() {
            switch key {
            case "objectives":
                try checkMetrics(value, known: known)
            case "maximize", "minimize":
                if case .mapping = value.node {
                    for (metric, weight) in try value.mapping() { try check(metric, at: weight) }
                } else {
                    try check(try value.string(), at: value)
                }
            case "constraints":
                for element in try value.sequence() {
                    if let metric = try element.mapping().first(where: { $0.key == "metric" })?.value {
                        try check(try metric.string(), at: metric)
                    }
                }
            default:
                break
            }
        }
    }

    /// The first word of every command the experiment runs (when it is not a placeholder) must be a program
    /// `check` accepts.
    private static func checkPrograms(_ node: TaskNode, check: ProgramCheck) throws(TaskFileError) {
        var commands: [TaskNode] = []
        let fields = try node.mapping()
        if let command = fields.first(where: { $0.key == "command" })?.value { commands.append(command) }
        if let server = fields.first(where: { $0.key == "server" })?.value,
            !(try server.mapping()).contains(where: { $0.key == "docker" }),
            let command = try server.mapping().first(where: { $0.key == "command" })?.value
        {
            commands.append(command)
        }
        if let benchmark = fields.first(where: { $0.key == "benchmark" })?.value, case .mapping = benchmark.node,
            let command = try benchmark.mapping().first(where: { $0.key == "command" })?.value
        {
            commands.append(command)
        }
        for command in commands {
            guard let first = try command.sequence().first else { continue }
            let program = try first.string()
            guard Template(program).placeholders.isEmpty else { continue }
            if let problem = check(program) { throw first.error(problem) }
        }
    }

    /// Why `name` cannot name a study, or `nil`: it becomes a directory name and part of job names, so it is
    /// short and made of letters, digits, `-`, `_` and `.`, and never `.` or `..` alone.
    public static func studyNameProblem(_ name: String) -> String? {
        guard !name.isEmpty else { return "a study name must not be empty" }
        guard name.count <= 100 else { return "a study name is at most 100 characters, got \(name.count)" }
        guard name.allSatisfy({ ($0.isLetter || $0.isNumber) && $0.isASCII || "-_.".contains($0) }), name != ".",
            name != ".."
        else {
            return "a study name may only hold letters, digits, '-', '_' and '.'"
        }
        return nil
    }

    /// A strategy check's error, placed at the option it names when it names one, else at `strategy:`.
    private static func strategyProblem(_ error: any Error, strategy: StrategySpec, node: TaskNode) -> TaskFileError {
        let message = "\(error)"
        if case .mapping = node.node, let fields = try? node.mapping() {
            for (key, value) in fields where key != "name" && message.contains("'\(key)'") {
                return value.error(message)
            }
        }
        return node.error(message)
    }

    // MARK: Sections

    private static func parameters(_ node: TaskNode, constraints constraintsNode: TaskNode?) throws(TaskFileError)
        -> SearchSpace
    {
        var parameters: [Parameter] = []
        let entries = try node.mapping()
        guard !entries.isEmpty else { throw node.error("declare at least one parameter") }
        for (name, spec) in entries {
            let parameter = try parameter(name: name, spec)
            do {
                _ = try SearchSpace(parameters + [parameter])
            } catch {
                throw spec.error(error.message)
            }
            parameters.append(parameter)
        }
        var constraints: [ParameterExpression] = []
        for element in try constraintsNode?.sequence() ?? [] {
            let constraint = try expression(element)
            do {
                _ = try SearchSpace(parameters, constraints: [constraint])
            } catch {
                throw element.error(error.message)
            }
            constraints.append(constraint)
        }
        do {
            return try SearchSpace(parameters, constraints: constraints)
        } catch {
            throw node.error(error.message)
        }
    }

    /// An expression (a constraint, a `when:` condition), a parse error placed at its character.
    private static func expression(_ node: TaskNode) throws(TaskFileError) -> ParameterExpression {
        let text = try node.nonEmptyString()
        do {
            return try ParameterExpression(text)
        } catch {
            var located = node.error("\(error.message) in '\(TaskNode.quoted(text))'")
            // A quoted scalar's text starts one column after its mark.
            let quoted: Bool
            if case .scalar(let scalar) = node.node { quoted = scalar.style != .plain } else { quoted = false }
            located.column = located.column.map { $0 + error.offset + (quoted ? 1 : 0) }
            throw located
        }
    }

    private static func parameter(name: String, _ node: TaskNode) throws(TaskFileError) -> Parameter {
        switch node.node {
        case .sequence:
            return Parameter(name, .categorical(try values(node)))
        case .scalar:
            return Parameter(name, .fixed(try node.parameterValue()))
        default:
            break
        }
        let fields = try node.fields(allowed: ["type", "min", "max", "step", "log", "values", "value", "flag", "when"])
        let type = try fields.required("type", "int, float, categorical, bool or fixed")
        let flag = try fields["flag"]?.nonEmptyString()
        let condition = try fields["when"].map { node throws(TaskFileError) in try expression(node) }
        func allowOnly(_ keys: Set<String>) throws(TaskFileError) {
            for (key, value) in fields.entries
            where !keys.contains(key) && key != "type" && key != "flag" && key != "when" {
                throw value.error("'\(key)' does not apply to a parameter of type \(try type.string())")
            }
        }
        let domain: Parameter.Domain
        switch try type.string() {
        case "int":
            try allowOnly(["min", "max", "step", "log"])
            let lower = try fields.required("min", "the smallest value").int()
            let upper = try fields.required("max", "the largest value").int()
            let step = try fields["step"]?.int(in: 1...Int.max) ?? 1
            domain = .int(lower: lower, upper: upper, step: step, log: try fields["log"]?.bool() ?? false)
        case "float":
            try allowOnly(["min", "max", "log"])
            let lower = try fields.required("min", "the smallest value").double()
            let upper = try fields.required("max", "the largest value").double()
            domain = .float(lower: lower, upper: upper, log: try fields["log"]?.bool() ?? false)
        case "categorical":
            try allowOnly(["values"])
            domain = .categorical(try values(try fields.required("values", "a list of choices")))
        case "bool":
            try allowOnly([])
            domain = .bool
        case "fixed":
            try allowOnly(["value"])
            domain = .fixed(try fields.required("value", "the value passed to every trial").parameterValue())
        default:
            throw type.error(
                "unknown parameter type '\(try type.string())'; expected int, float, categorical, bool or fixed")
        }
        return Parameter(name, domain, flag: flag, when: condition)
    }

    /// The most values a categorical parameter may list: beyond that the space wants to be an int range.
    static let maximumValues = 10_000

    private static func values(_ node: TaskNode) throws(TaskFileError) -> [ParameterValue] {
        var values: [ParameterValue] = []
        let elements = try node.sequence()
        guard elements.count <= maximumValues else {
            throw node.error("a parameter lists at most \(maximumValues) values, got \(elements.count)")
        }
        for element in elements { values.append(try element.parameterValue()) }
        guard !values.isEmpty else { throw node.error("give at least one value") }
        return values
    }

    /// The objective: `objective: {maximize: m}` (or `minimize`, or a mapping of metrics to weights) with its
    /// constraints, or several objectives as a list, `objectives: [{maximize: a}, {minimize: b}]`, at the top
    /// level or inside `objective:` beside the constraints.
    private static func objective(_ node: TaskNode, list topList: TaskNode?) throws(TaskFileError) -> Objective {
        if case .sequence = node.node {
            return Objective(goals: try goals(node), constraints: [])
        }
        let fields = try node.fields(allowed: ["maximize", "minimize", "constraints", "objectives"])
        let constraints = try metricConstraints(fields["constraints"])
        if let list = fields["objectives"] ?? topList {
            if let single = fields["maximize"] ?? fields["minimize"] {
                throw single.error(
                    "give either one objective (maximize or minimize) or a list under 'objectives', not both")
            }
            if fields["objectives"] != nil, let topList {
                throw topList.error("'objectives' is given twice: at the top level and inside 'objective'")
            }
            return Objective(goals: try goals(list), constraints: constraints)
        }
        let goal = try goal(fields, node: node)
        return Objective(goal.direction, terms: goal.terms, constraints: constraints)
    }

    /// A list of two to eight objectives, each `{maximize: metric}` or `{minimize: metric}`.
    private static func goals(_ node: TaskNode) throws(TaskFileError) -> [Objective.Goal] {
        let elements = try node.sequence()
        guard elements.count >= 2 else {
            throw node.error(
                "give at least two objectives in the list (for one, write objective: {maximize: metric})")
        }
        guard elements.count <= 8 else { throw node.error("at most 8 objectives, got \(elements.count)") }
        var goals: [Objective.Goal] = []
        for element in elements {
            let goal = try goal(try element.fields(allowed: ["maximize", "minimize"]), node: element)
            if goals.contains(goal) { throw element.error("this objective is listed twice") }
            goals.append(goal)
        }
        return goals
    }

    /// One goal from a mapping holding `maximize` or `minimize`.
    private static func goal(_ fields: Fields, node: TaskNode) throws(TaskFileError) -> Objective.Goal {
        let direction: Objective.Direction
        let target: TaskNode
        switch (fields["maximize"], fields["minimize"]) {
        case (let node?, nil):
            (direction, target) = (.maximize, node)
        case (nil, let node?):
            (direction, target) = (.minimize, node)
        case (_?, _?):
            throw node.error("give either maximize or minimize, not both")
        case (nil, nil):
            throw node.error("missing 'maximize' or 'minimize' (a metric name, or a mapping of metric to weight)")
        }
        var terms: [Objective.Term] = []
        if case .mapping = target.node {
            for (metric, weight) in try target.mapping() {
                guard let first = metric.unicodeScalars.first, first == "_" || first.properties.isAlphabetic else {
                    throw target.error("a metric's name starts with a letter or '_', got '\(metric)'")
                }
                terms.append(Objective.Term(metric: metric, weight: try weight.double()))
            }
            guard !terms.isEmpty else { throw target.error("give at least one metric") }
        } else {
            terms = [Objective.Term(metric: try target.metricName())]
        }
        return Objective.Goal(direction, terms: terms)
    }

    /// The `constraints:` list on metrics.
    private static func metricConstraints(_ list: TaskNode?) throws(TaskFileError) -> [MetricConstraint] {
        var constraints: [MetricConstraint] = []
        if let list {
            for element in try list.sequence() {
                let item = try element.fields(allowed: ["metric", "min", "max", "on_violation", "penalty"])
                let metric = try item.required("metric", "the metric bounded").metricName()
                let minimum = try item["min"]?.double()
                let maximum = try item["max"]?.double()
                guard minimum != nil || maximum != nil else { throw element.error("give min, max or both") }
                if let minimum, let maximum, minimum > maximum {
                    throw element.error("min \(minimum) is above max \(maximum)")
                }
                var enforcement = MetricConstraint.Enforcement.hard
                switch try item["on_violation"]?.string() ?? "fail" {
                case "fail":
                    if let penalty = item["penalty"] { throw penalty.error("'penalty' needs on_violation: penalize") }
                case "penalize":
                    let penalty = try item.required("penalty", "score lost per unit of violation").double()
                    guard penalty > 0 else { throw item["penalty"]!.error("must be greater than 0") }
                    enforcement = .soft(penalty: penalty)
                default:
                    throw item["on_violation"]!.error("expected 'fail' or 'penalize'")
                }
                constraints.append(
                    MetricConstraint(metric: metric, minimum: minimum, maximum: maximum, enforcement: enforcement)
                )
            }
        }
        return constraints
    }

    private static func strategy(_ node: TaskNode?) throws(TaskFileError) -> StrategySpec {
        guard let node else { return StrategySpec(name: "random") }
        if case .scalar = node.node { return StrategySpec(name: try node.nonEmptyString()) }
        var name: String?
        var options: [String: JSONValue] = [:]
        for (key, value) in try node.mapping() {
            if key == "seed" {
                throw value.error("the seed is a top-level field (seed: 3 beside strategy:), or run --seed N")
            }
            if key == "name" {
                name = try value.nonEmptyString()
            } else {
                options[key] = try value.jsonValue()
            }
        }
        if name == nil, options["command"] != nil { name = "plugin" }
        guard let name else {
            throw node.error(
                "missing 'name' (grid, random, bayesian, or a registered strategy) or 'command' (a plug-in)")
        }
        return StrategySpec(name: name, options: options)
    }

    private static func budget(_ node: TaskNode?) throws(TaskFileError) -> Budget {
        guard let node else { return Budget() }
        let fields = try node.fields(allowed: ["max_trials", "max_duration"])
        return Budget(
            maxTrials: try fields["max_trials"]?.int(in: 1...10_000_000),
            maxTime: try fields["max_duration"]?.duration()
        )
    }

    private static func resources(_ node: TaskNode?, space: SearchSpace) throws(TaskFileError) -> Resources {
        var resources = Resources()
        guard let node else { return resources }
        let fields = try node.fields(allowed: [
            "gpus", "gpus_per_trial", "min_free_memory", "ports", "max_concurrent_launches",
        ])
        if let gpus = fields["gpus"] {
            if case .sequence = gpus.node {
                var indexes: [Int] = []
                for element in try gpus.sequence() { indexes.append(try element.int(in: 0...1023)) }
                guard Set(indexes).count == indexes.count else { throw gpus.error("a GPU index is listed twice") }
                resources.gpus = .declared(indexes)
            } else if try gpus.string() == "auto" {
                resources.gpus = .discover
            } else {
                throw gpus.error("expected 'auto' (nvidia-smi) or a list of GPU indexes like [0, 1, 2, 3]")
            }
        }
        var count: GPURequest.Count?
        if let perTrial = fields["gpus_per_trial"] {
            if case .sequence = perTrial.node {
                var names: [String] = []
                for element in try perTrial.sequence() {
                    let name = try element.nonEmptyString()
                    let integral: Bool
                    switch space[name]?.domain {
                    case .int?: integral = true
                    case .categorical(let values)?:
                        integral = values.allSatisfy { if case .int = $0 { true } else { false } }
                    case .fixed(.int)?: integral = true
                    default: integral = false
                    }
                    guard integral else {
                        throw element.error("'\(name)' is not an integer parameter (the GPU count is their product)")
                    }
                    names.append(name)
                }
                count = .product(of: names)
            } else {
                count = .fixed(try perTrial.int(in: 0...1024))
            }
        }
        let memory = try fields["min_free_memory"]?.double()
        if memory != nil, count == nil {
            throw fields["min_free_memory"]!.error("needs gpus_per_trial")
        }
        if let memory, memory < 0 {
            throw fields["min_free_memory"]!.error(
                "is the least free memory a GPU must have, in MiB: at least 0, got \(memory)")
        }
        // A trial that asks for more GPUs than the pool lists can never start.
        if case .declared(let pool) = resources.gpus, let count, let node = fields["gpus_per_trial"] {
            switch count {
            case .fixed(let needed) where needed > pool.count:
                throw node.error("asks for \(needed) GPUs per trial but resources.gpus lists \(pool.count)")
            case .product(let names):
                let least = names.map { space[$0].flatMap { Self.integralBounds($0.domain)?.lowest } ?? 1 }.reduce(1, *)
                let most = names.map { space[$0].flatMap { Self.integralBounds($0.domain)?.highest } ?? 1 }.reduce(1, *)
                if least > pool.count {
                    throw node.error(
                        "every trial needs at least \(least) GPUs (\(names.joined(separator: " × "))) but resources.gpus lists \(pool.count)"
                    )
                }
                let bounded = space.constraints.contains { $0.names.contains("gpus") }
                if most > pool.count, !bounded {
                    throw node.error(
                        "\(names.joined(separator: " × ")) reaches \(most) GPUs but resources.gpus lists \(pool.count): add the constraint '\(names.joined(separator: " * ")) <= gpus' or list more GPUs"
                    )
                }
            default:
                break
            }
        }
        resources.gpusPerTrial = count.map { GPURequest(count: $0, minimumFreeMemoryMiB: memory) }
        if let ports = fields["ports"] {
            let text = try ports.string()
            let bounds = text.split(separator: "-").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard bounds.count == 2, let low = bounds[0], let high = bounds[1], 1024 <= low, low <= high, high <= 65535
            else {
                throw ports.error("expected a range like 30000-31999 within 1024-65535")
            }
            resources.ports = low...high
        }
        resources.maxConcurrentLaunches = try fields["max_concurrent_launches"]?.int(in: 1...1024) ?? 2
        return resources
    }

    /// The lowest and highest value of an integer parameter's domain.
    private static func integralBounds(_ domain: Parameter.Domain) -> (lowest: Int, highest: Int)? {
        switch domain {
        case .int(let lower, let upper, _, _): return (lower, upper)
        case .categorical(let values):
            let numbers = values.compactMap { if case .int(let value) = $0 { value } else { nil } }
            guard let low = numbers.min(), let high = numbers.max() else { return nil }
            return (low, high)
        case .fixed(.int(let value)): return (value, value)
        default: return nil
        }
    }

    private static func baseline(_ node: TaskNode?, space: SearchSpace) throws(TaskFileError) -> Configuration? {
        guard let node else { return nil }
        var values: [String: ParameterValue] = [:]
        for (name, value) in try node.mapping(allowed: space.parameters.map(\.name)) {
            values[name] = try value.parameterValue()
        }
        for parameter in space.parameters where values[parameter.name] == nil && parameter.condition == nil {
            guard case .fixed(let value) = parameter.domain else {
                throw node.error("the baseline gives no value for parameter '\(parameter.name)'")
            }
            values[parameter.name] = value
        }
        do {
            return try space.coerce(values)
        } catch {
            throw node.error("the baseline is outside the search space: \(error.message)")
        }
    }

    private static func timeouts(_ node: TaskNode?) throws(TaskFileError) -> Timeouts {
        guard let node else { return Timeouts() }
        let fields = try node.fields(allowed: ["trial", "kill_grace"])
        return Timeouts(
            trial: try fields["trial"]?.duration(), killGrace: try fields["kill_grace"]?.duration() ?? .seconds(5))
    }

    private static func command(
        _ node: TaskNode,
        space: SearchSpace,
        workingDirectory: URL
    ) throws(TaskFileError) -> CommandSpec {
        let fields = try node.fields(allowed: ["kind", "command", "env", "workdir", "append_flags", "metrics"])
        if let kind = fields["kind"], try kind.string() != "command" {
            throw kind.error("unknown experiment kind '\(try kind.string())'; expected 'command' or 'serving'")
        }
        let reader = TemplateReader(space: space)
        let command = try reader.command(try fields.required("command", "the program and its arguments as a list"))
        let environment = try reader.environment(fields["env"])
        let directory = try TemplateReader.workingDirectory(fields["workdir"], base: workingDirectory)
        var metrics = MetricsSource()
        if let metricsNode = fields["metrics"] {
            let items = try metricsNode.fields(allowed: ["stdout_json", "file", "patterns"])
            metrics.stdoutJSON = try items["stdout_json"]?.bool() ?? true
            if let file = items["file"] { metrics.file = try reader.template(file) }
            if let patterns = items["patterns"] {
                for (name, pattern) in try patterns.mapping() {
                    let text = try pattern.nonEmptyString()
                    if let problem = MetricsExtraction.problem(withPattern: text) { throw pattern.error(problem) }
                    metrics.patterns[name] = text
                }
            }
        }
        return CommandSpec(
            command: command,
            environment: environment,
            workingDirectory: directory,
            appendFlags: try fields["append_flags"]?.bool() ?? true,
            metrics: metrics
        )
    }

    private static func serving(
        _ node: TaskNode,
        space: SearchSpace,
        workingDirectory: URL
    ) throws(TaskFileError) -> ServingSpec {
        let fields = try node.fields(allowed: ["kind", "server", "benchmark", "timeouts"])
        let serverNode = try fields.required("server", "the server's command, health path and model")
        let server = try serverNode.fields(allowed: [
            "command", "env", "workdir", "append_flags", "health", "model", "docker",
        ])
        let reader = TemplateReader(space: space)
        let command = try reader.command(try server.required("command", "the server's program and arguments as a list"))
        let environment = try reader.environment(server["env"])
        let directory = try TemplateReader.workingDirectory(server["workdir"], base: workingDirectory)
        let health = try server["health"]?.nonEmptyString() ?? "/health"
        guard health.hasPrefix("/") else {
            throw server["health"]!.error("a health path starts with '/', e.g. /health")
        }
        var launcher = ServerSpec.Launcher.process
        if let dockerNode = server["docker"] {
            let docker = try dockerNode.fields(allowed: ["image", "port", "mounts", "args"])
            var mounts: [String] = []
            for mount in try docker["mounts"]?.sequence() ?? [] { mounts.append(try mount.nonEmptyString()) }
            var extra: [String] = []
            for argument in try docker["args"]?.sequence() ?? [] { extra.append(try argument.string()) }
            launcher = .docker(
                DockerSpec(
                    image: try docker.required("image", "the container image").nonEmptyString(),
                    containerPort: try docker["port"]?.int(in: 1...65535) ?? 8000,
                    mounts: mounts,
                    extraArguments: extra
                )
            )
        }
        let serverSpec = ServerSpec(
            command: command,
            environment: environment,
            workingDirectory: directory,
            appendFlags: try server["append_flags"]?.bool() ?? true,
            healthPath: health,
            model: try server["model"]?.nonEmptyString() ?? "model",
            launcher: launcher
        )
        let benchmarkNode = try fields.required(
            "benchmark", "the load (concurrency, requests, token lengths) or a command")
        let benchmark: BenchmarkSpec
        let benchmarkFields = try benchmarkNode.fields(allowed: [
            "endpoint", "concurrency", "rates", "requests", "duration", "input_tokens", "output_tokens", "warmup",
            "request_timeout", "command", "result_file", "metrics", "search", "slo", "workload",
        ])
        if let externalCommand = benchmarkFields["command"] {
            var argv: [Template] = []
            for element in try externalCommand.sequence() { argv.append(try reader.template(element)) }
            // Without a map, a result in `vllm bench serve --save-result` form is read by its own field names.
            var metrics: [String: String] = [:]
            for (name, path) in try benchmarkFields["metrics"]?.mapping() ?? [] {
                metrics[name] = try path.nonEmptyString()
            }
            benchmark = .external(
                ExternalBenchmarkSpec(
                    command: argv,
                    resultFile: try benchmarkFields["result_file"].map { node throws(TaskFileError) in
                        try reader.template(node)
                    }, metrics: metrics)
            )
        } else {
            var load = LoadSpec()
            if let endpoint = benchmarkFields["endpoint"] {
                guard let value = LoadSpec.Endpoint(rawValue: try endpoint.string()) else {
                    throw endpoint.error("expected 'completions' or 'chat'")
                }
                load.endpoint = value
            }
            func ints(_ node: TaskNode) throws(TaskFileError) -> [Int] {
                if case .sequence = node.node {
                    var values: [Int] = []
                    for element in try node.sequence() { values.append(try element.int(in: 1...100_000)) }
                    return values
                }
                return [try node.int(in: 1...100_000)]
            }
            if let concurrency = benchmarkFields["concurrency"] { load.concurrency = try ints(concurrency) }
            if let rates = benchmarkFields["rates"] {
                var values: [Double] = []
                let elements = (try? rates.sequence()) ?? [rates]
                for element in elements {
                    let rate = try element.double()
                    guard rate > 0 else { throw element.error("a request rate must be above 0") }
                    values.append(rate)
                }
                load.rates = values
                if benchmarkFields["concurrency"] == nil { load.concurrency = [] }
            }
            load.requests = try benchmarkFields["requests"]?.int(in: 1...10_000_000) ?? load.requests
            load.duration = try benchmarkFields["duration"]?.duration()
            load.inputTokens = try benchmarkFields["input_tokens"]?.int(in: 1...1_000_000) ?? load.inputTokens
            load.outputTokens = try benchmarkFields["output_tokens"]?.int(in: 1...1_000_000) ?? load.outputTokens
            load.warmupRequests = try benchmarkFields["warmup"]?.int(in: 0...10_000) ?? load.warmupRequests
            load.requestTimeout = try benchmarkFields["request_timeout"]?.duration() ?? load.requestTimeout
            if let workload = benchmarkFields["workload"] {
                if let node = benchmarkFields["input_tokens"] ?? benchmarkFields["output_tokens"] {
                    throw node.error(
                        "with 'workload' the lengths are the workload's: give them as its input and output")
                }
                load.workload = try WorkloadReader.workload(workload, base: workingDirectory)
                if case .trace(let trace) = load.workload?.source, case .replay(let speed) = trace.timing {
                    // A replayed trace sets its own arrival times: one open-loop level at the trace's mean rate,
                    // every row of it unless the user caps the requests or the duration.
                    if let node = benchmarkFields["concurrency"] ?? benchmarkFields["rates"] {
                        throw node.error(
                            "a replayed trace sends requests at its own times: leave out concurrency and rates, or replay it with timing: shape to run it at the levels' rates"
                        )
                    }
                    let replay = try WorkloadReader.replay(trace, speed: speed, workload: workload)
                    load.concurrency = []
                    load.rates = [replay.rate]
                    if benchmarkFields["requests"] == nil { load.requests = replay.rows }
                }
            }
            if let slo = benchmarkFields["slo"] {
                for (metric, limit) in try slo.mapping() {
                    guard LoadSpec.levelMetrics.contains(metric) else {
                        let hint =
                            TaskNode.suggestion(for: metric, among: LoadSpec.levelMetrics).map {
                                "did you mean '\($0)'? "
                            } ?? ""
                        throw limit.error(
                            "an SLO bounds a level metric; '\(TaskNode.quoted(metric))' is none. \(hint)e.g. ttft_ms_p99, tpot_ms_p99, e2e_ms_p90"
                        )
                    }
                    let value = try limit.double()
                    guard value > 0 else { throw limit.error("an SLO's limit must be above 0") }
                    load.slo[metric] = value
                }
            }
            if let search = benchmarkFields["search"] {
                let items = try search.fields(allowed: ["rate", "concurrency", "tolerance", "max_levels"])
                let kind: CapacitySearch.Load
                let range: TaskNode
                switch (items["rate"], items["concurrency"]) {
                case (let node?, nil): (kind, range) = (.rate, node)
                case (nil, let node?): (kind, range) = (.concurrency, node)
                case (_?, _?): throw search.error("search either 'rate' or 'concurrency', not both")
                case (nil, nil): throw search.error("give rate: [low, high] (requests/s) or concurrency: [low, high]")
                }
                let bounds = try range.sequence()
                guard bounds.count == 2 else { throw range.error("give the lowest and highest load: [low, high]") }
                let lower = try bounds[0].double()
                let upper = try bounds[1].double()
                guard lower > 0, upper > lower else {
                    throw range.error("need 0 < low < high, got [\(lower), \(upper)]")
                }
                if kind == .concurrency, lower != lower.rounded() || upper != upper.rounded() {
                    throw range.error("a concurrency is a whole number")
                }
                guard !load.slo.isEmpty else {
                    throw search.error(
                        "a capacity search needs 'slo' beside it: the limits the load must keep, e.g. slo: {ttft_ms_p99: 500}"
                    )
                }
                if let node = benchmarkFields["concurrency"] ?? benchmarkFields["rates"] {
                    throw node.error(
                        "with 'search' the levels are chosen by the search; leave out concurrency and rates")
                }
                var capacity = CapacitySearch(load: kind, lower: lower, upper: upper)
                if let tolerance = items["tolerance"] {
                    capacity.tolerance = try tolerance.double()
                    guard capacity.tolerance > 0, capacity.tolerance < 1 else {
                        throw tolerance.error("a tolerance between 0 and 1, e.g. 0.05 for 5%")
                    }
                }
                capacity.maxLevels = try items["max_levels"]?.int(in: 2...50) ?? capacity.maxLevels
                load.search = capacity
                load.concurrency = []
                load.rates = []
            }
            benchmark = .load(load)
        }
        var timeouts = StageTimeouts()
        if let node = fields["timeouts"] {
            let items = try node.fields(allowed: ["deploy", "ready", "benchmark"])
            timeouts.deploy = try items["deploy"]?.duration() ?? timeouts.deploy
            timeouts.ready = try items["ready"]?.duration() ?? timeouts.ready
            timeouts.benchmark = try items["benchmark"]?.duration() ?? timeouts.benchmark
        }
        return ServingSpec(server: serverSpec, benchmark: benchmark, stageTimeouts: timeouts)
    }

    private static func syntaxError(_ error: YamlError, file: String) -> TaskFileError {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
            .composer(_, let problem, let mark, _):
            return TaskFileError(
                file: file, line: mark.line, column: mark.column, field: "", message: "syntax error: \(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            // Yams's own description quotes the whole file.
            let keys = duplicates.prefix(5).map { "'\(TaskNode.quoted($0))'" }.joined(separator: ", ")
            return TaskFileError(
                file: file, line: max(1, context.mark.line), column: max(1, context.mark.column), field: "",
                message: "a key is given twice in one mapping: \(keys)")
        default:
            let description = "\(error)".split(whereSeparator: \.isNewline).first.map(String.init) ?? "\(error)"
            return TaskFileError(
                file: file, line: 1, column: 1, field: "",
                message: "not valid YAML or JSON: \(TaskNode.quoted(description))")
        }
    }
}

/// Reads an experiment's templates, checking every placeholder against the parameters and the built-ins.
struct TemplateReader {
    private let known: Set<String>
    private let parameters: Set<String>

    init(space: SearchSpace) {
        parameters = Set(space.parameters.map(\.name))
        known = parameters.union(TaskFile.builtInPlaceholders)
    }

    /// One template; `{env.NAME}` is always allowed (it is read from the environment when the trial runs).
    func template(_ node: TaskNode) throws(TaskFileError) -> Template {
        let template = Template(try node.string())
        let environment = template.placeholders.filter { $0.hasPrefix("env.") }
        do {
            _ = try template.render(Dictionary(uniqueKeysWithValues: known.union(environment).map { ($0, "") }))
        } catch {
            let builtIns = known.subtracting(parameters).sorted().joined(separator: ", ")
            throw node.error("\(error.message); placeholders are the parameter names, env.NAME and: \(builtIns)")
        }
        return template
    }

    /// An argv: a non-empty list, never a string (there is no shell to split it).
    func command(_ node: TaskNode) throws(TaskFileError) -> [Template] {
        if case .scalar = node.node {
            throw node.error(
                "write the command as a list of arguments, e.g. [zstd, \"-{level}\"]: it runs without a shell")
        }
        var command: [Template] = []
        for element in try node.sequence() { command.append(try template(element)) }
        guard let first = command.first, !first.text.isEmpty else { throw node.error("the command is empty") }
        return command
    }

    /// `env:`, values being templates and names POSIX names (letters, digits and `_`, not starting with a
    /// digit): anything else is not a variable a program can read, and could break a Slurm job's script.
    func environment(_ node: TaskNode?) throws(TaskFileError) -> [String: Template] {
        var environment: [String: Template] = [:]
        for (key, value) in try node?.mapping() ?? [] {
            guard key.isEnvironmentVariableName else {
                throw value.error(
                    "'\(TaskNode.quoted(key))' is not an environment variable name (letters, digits and '_', not starting with a digit)"
                )
            }
            environment[key] = try template(value)
        }
        return environment
    }

    /// `workdir:` made absolute against `base` (where autotune was started), as a template with its braces
    /// escaped: a directory is a path, not a template.
    static func workingDirectory(_ node: TaskNode?, base: URL) throws(TaskFileError) -> Template {
        var directory = base.path
        if let node {
            let text = try node.nonEmptyString()
            directory = text.hasPrefix("/") ? text : base.appendingPathComponent(text).standardizedFileURL.path
        }
        return Template(directory.replacingOccurrences(of: "{", with: "{{").replacingOccurrences(of: "}", with: "}}"))
    }
}
