import Foundation

extension StudyDefinition {
    /// What a changed task file may change in a study that has trials: the fields that say how the study runs,
    /// not what its recorded trials and its strategy's checkpoint mean.
    ///
    /// Allowed: the budget, `parallel`, time limits, the experiment (the command, a server's flags outside the
    /// space, the benchmark), resources, what happens to lost trials, `fail_fast` and `confirm`. Refused: the
    /// space, the objective and its constraints, the strategy and its options, the seed, the baseline — every
    /// recorded score, proposal and checkpoint depends on them. The name is the study's.
    public struct Changes: Sendable, Hashable {
        /// The fields that changed and may.
        public var allowed: [String]
        /// The fields that changed and may not, each with what it was and what it would become.
        public var refused: [String]

        /// Whether nothing changed.
        public var isEmpty: Bool { allowed.isEmpty && refused.isEmpty }
    }

    /// How `other` differs from this definition, field by field.
    public func changes(to other: StudyDefinition) -> Changes {
        func json<T: Encodable>(_ value: T) -> String {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "?"
        }
        func short(_ text: String) -> String { text.count <= 120 ? text : String(text.prefix(117)) + "..." }
        var allowed: [String] = []
        var refused: [String] = []
        func compare<T: Encodable & Equatable>(_ field: String, _ a: T, _ b: T, may: Bool) {
            guard a != b else { return }
            if may {
                allowed.append(field)
            } else {
                refused.append("\(field): \(short(json(a))) → \(short(json(b)))")
            }
        }
        compare("parameters", space, other.space, may: false)
        compare("objective", objective, other.objective, may: false)
        compare("strategy", strategy, other.strategy, may: false)
        compare("seed", seed, other.seed, may: false)
        compare("baseline", baseline, other.baseline, may: false)
        compare("budget", budget, other.budget, may: true)
        compare("parallel", parallel, other.parallel, may: true)
        compare("timeouts", timeouts, other.timeouts, may: true)
        compare("experiment", experiment, other.experiment, may: true)
        // The traffic is what makes trials comparable: a changed workload (or its file) would measure the trials
        // still to run on other requests than the ones already run.
        if let before = workload?.file, let after = other.workload?.file, before.path == after.path,
            before.fingerprint != after.fingerprint,
            workload?.withFingerprint("") == other.workload?.withFingerprint("")
        {
            refused.append("benchmark.workload: \(before.path) changed since the study started")
        } else {
            compare("benchmark.workload", workload, other.workload, may: false)
        }
        compare("on_lost_trial", lostTrials, other.lostTrials, may: true)
        compare("resources", resources, other.resources, may: true)
        compare("fail_fast", failFast, other.failFast, may: true)
        compare("confirm", confirm, other.confirm, may: true)
        compare("execution", execution, other.execution, may: true)
        return Changes(allowed: allowed, refused: refused)
    }

    /// The serving benchmark's workload, when the experiment is one that has one.
    private var workload: Workload? {
        guard case .serving(let serving) = experiment, case .load(let load) = serving.benchmark else { return nil }
        return load.workload
    }
}
