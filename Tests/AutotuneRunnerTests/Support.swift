import Autotune
import AutotuneRunner
import AutotuneStore
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A 12-point grid: level 1...3 × long × mode a/b.
func gridSpace() throws -> SearchSpace {
    try SearchSpace([
        Parameter("level", .int(lower: 1, upper: 3)),
        Parameter("long", .bool),
        Parameter("mode", .categorical([.string("a"), .string("b")])),
    ])
}

func definition(
    name: String = "study",
    space: SearchSpace,
    objective: Objective = .maximize("score"),
    strategy: String = "grid",
    maxTrials: Int? = nil,
    parallel: Int = 4,
    timeouts: Timeouts = Timeouts(),
    command: [String] = ["true"],
    lostTrials: LostTrialPolicy = .requeue
) -> StudyDefinition {
    StudyDefinition(
        name: name,
        space: space,
        objective: objective,
        strategy: StrategySpec(name: strategy),
        budget: Budget(maxTrials: maxTrials),
        parallel: parallel,
        seed: 3,
        timeouts: timeouts,
        experiment: .command(CommandSpec(command: command.map(Template.init))),
        lostTrials: lostTrials
    )
}

/// Calls a closure for each finished trial (on the runner's actor).
struct CallbackProgress: ProgressReporter {
    let callback: @Sendable (ProgressEvent) -> Void

    func trialFinished(_ event: ProgressEvent) { callback(event) }
}

/// Counts things across tasks.
final class Counter: Sendable {
    private let counts = Mutex<[Int: Int]>([:])
    private let current = Mutex<(now: Int, peak: Int)>((0, 0))

    func add(_ key: Int) { counts.withLock { $0[key, default: 0] += 1 } }
    var values: [Int: Int] { counts.withLock { $0 } }

    func enter() {
        current.withLock {
            $0.now += 1; $0.peak = max($0.peak, $0.now)
        }
    }
    func leave() { current.withLock { $0.now -= 1 } }
    var peak: Int { current.withLock { $0.peak } }
}

/// Whether a process with this pid exists (and is not a zombie we could still reap).
func processExists(_ pid: Int32) -> Bool {
    guard kill(pid, 0) == 0 else { return false }
    let status = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
    return !status.contains(") Z ")
}

func readPID(_ url: URL) throws -> Int32 {
    let text = try String(contentsOf: url, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    return try #require(Int32(text))
}

/// A value shared by concurrent test tasks.
final class Shared<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    init(_ value: Value) { mutex = Mutex(value) }

    func withLock<T>(_ body: (inout Value) -> T) -> T { mutex.withLock { body(&$0) } }
}

/// A list concurrent tasks append to.
final class Collected<Element: Sendable>: Sendable {
    private let values = Mutex<[Element]>([])

    func append(_ value: Element) { values.withLock { $0.append(value) } }

    var all: [Element] { values.withLock { $0 } }
}
