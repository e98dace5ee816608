import AsyncHTTPClient
public import Autotune
import Foundation
import Synchronization

/// Watches a level's requests against its percentile SLOs and says when one is already clearly broken.
///
/// For `ttft_ms_p99 ≤ L` over a level of N requests: once more than `(1 − 0.99) N + 1` requests took longer
/// than `1.1 L`, the level's p99 is above `1.1 L` whatever the rest do, so nothing the remaining requests
/// measure can save it. At least 20 requests must have finished first. Requests that finish after the stop are
/// dropped: they were cut short, not measured. Levels of a fixed duration (no request count) and SLOs on means
/// are never stopped early.
final class LevelMonitor: Sendable {
    private struct Limit {
        let base: String
        let quantile: Double
        let limit: Double
    }

    private struct State {
        var finished = 0
        var exceeded: [Int]
        var stopped = false
        var plannedEnd: Double?
        var planned: Int?
    }

    private let limits: [Limit]
    private let state: Mutex<State>
    /// The margin past a limit that counts as clearly broken.
    static let margin = 1.1
    /// The fewest finished requests before a level may end early.
    static let minimumRequests = 20

    init(slo: [String: Double], planned: Int?) {
        limits = slo.compactMap { metric, limit in
            guard let base = Self.base(of: metric), let quantile = Self.quantile(of: metric) else { return nil }
            return Limit(base: base, quantile: quantile, limit: limit)
        }
        state = Mutex(State(exceeded: Array(repeating: 0, count: limits.count), planned: planned))
    }

    /// Whether the level ended early.
    var stopped: Bool { state.withLock { $0.stopped } }

    /// When the level's last request was to be sent (open loop), to tell the time a stop saved.
    var plannedEnd: Double? { state.withLock { $0.plannedEnd } }

    /// An open-loop level knows its arrivals before it starts: their count and the last one's time.
    func plan(requests: Int, lastArrival: Double?) {
        state.withLock {
            $0.planned = requests
            $0.plannedEnd = lastArrival
        }
    }

    /// Counts a finished request; returns whether it is kept (it finished before any stop).
    func record(_ record: RequestRecord) -> Bool {
        state.withLock { state in
            guard !state.stopped else { return false }
            state.finished += 1
            guard let planned = state.planned else { return true }
            for (index, limit) in limits.enumerated() {
                let value = record.succeeded ? Self.value(limit.base, of: record) : .infinity
                if let value, value > limit.limit * Self.margin { state.exceeded[index] += 1 }
                if state.finished >= Self.minimumRequests,
                    Double(state.exceeded[index]) > (1 - limit.quantile) * Double(planned) + 1
                {
                    state.stopped = true
                }
            }
            return true
        }
    }

    /// The benchmark seconds an early stop saved, a lower bound: in an open loop the level would have ended once
    /// its last planned request was answered (its arrival time plus the median latency so far; a broken level's
    /// queue would only have made that later); in a closed loop, once the remaining requests ran at the pace so
    /// far.
    func saved(elapsed: Double, finished: [RequestRecord], plannedEnd: Double?) -> Double {
        guard let (stopped, planned) = Optional(state.withLock { ($0.stopped, $0.planned) }), stopped,
            let planned
        else { return 0 }
        if let plannedEnd {
            let latencies = finished.map(\.endToEnd).sorted()
            let median = latencies.isEmpty ? 0 : latencies[latencies.count / 2]
            return max(0, plannedEnd + median - elapsed)
        }
        return elapsed * Double(max(0, planned - finished.count)) / Double(max(finished.count, 1))
    }

    /// `ttft_ms` of `ttft_ms_p99`: the per-request measure a level metric summarises (ttft, tpot, e2e).
    static func base(of metric: String) -> String? {
        for base in ["ttft_ms", "tpot_ms", "e2e_ms"] where metric.hasPrefix(base + "_") { return base }
        return nil
    }

    /// 0.99 of `ttft_ms_p99`; `nil` for a mean.
    static func quantile(of metric: String) -> Double? {
        guard let suffix = metric.split(separator: "_").last, suffix.hasPrefix("p"),
            let value = Double(suffix.dropFirst())
        else { return nil }
        return value / 100
    }

    /// A request's own value of a per-request measure, in milliseconds.
    static func value(_ base: String, of record: RequestRecord) -> Double? {
        switch base {
        case "ttft_ms": return record.timeToFirstToken.map { $0 * 1000 }
        case "e2e_ms": return record.endToEnd * 1000
        case "tpot_ms":
            guard let first = record.timeToFirstToken, record.outputTokens > 1 else { return nil }
            return (record.endToEnd - first) / Double(record.outputTokens - 1) * 1000
        default: return nil
        }
    }
}

/// What one benchmark of a trial measured: the levels it ran, the metrics the trial reports, and, when the
/// trial should stop as pruned, why.
public struct LoadOutcome: Sendable {
    /// Every level run, in order.
    public var levels: [LevelResult]
    /// The trial's metrics.
    public var metrics: [String: Double]
    /// Set when a level broke one of the study's hard constraints with more levels to go, or ended early
    /// because of it: the trial is pruned.
    public var pruned: String?
    /// The index in ``levels`` of the level the trial's figures come from: the highest that passed in a capacity
    /// search (the lowest tried when none did), the only one of a single-level benchmark; `nil` when the trial
    /// reports each level under its own name.
    public var chosen: Int?
}

extension LoadGenerator {
    /// Runs the benchmark as the spec says: fixed levels (stopping once a hard constraint in `constraints` is
    /// broken, so the trial can be pruned), or a capacity search starting from `neighbour`'s capacity (the
    /// most similar trial of the study) when there is one.
    public func measure(
        baseURL: String,
        gpus: Int = 1,
        neighbour: [String: Double]? = nil,
        constraints: [MetricConstraint] = []
    ) async throws -> LoadOutcome {
        try await withClient { client in
            let plan = try await prepare(client: client, baseURL: baseURL)
            try await warmUp(client: client, baseURL: baseURL, plan: plan)
            if let search = spec.search {
                return try await capacity(
                    search, plan: plan, client: client, baseURL: baseURL, gpus: gpus,
                    start: spec.capacityMetric.flatMap { neighbour?[$0] })
            }
            var levels: [LevelResult] = []
            var pruned: String?
            let loads = fixedLevels
            for (index, load) in loads.enumerated() {
                try Task.checkCancellation()
                let result = try await level(
                    load, name: spec.levelNames[index], ordinal: index, plan: plan, client: client, baseURL: baseURL,
                    gpus: gpus)
                levels.append(result)
                let more = index + 1 < loads.count
                if more || result.metrics["early_stopped"] == 1,
                    let broken = Self.broken(constraints, level: result, single: loads.count == 1)
                {
                    pruned = "level \(result.name) broke \(broken)\(more ? "; the remaining levels were not run" : "")"
                    break
                }
            }
            var metrics: [String: Double] = [:]
            for level in levels {
                for (name, value) in level.metrics where name != "benchmark_s_saved" {
                    metrics["\(level.name).\(name)"] = value
                }
            }
            if levels.count == 1, loads.count == 1 {
                metrics.merge(levels[0].metrics.filter { $0.key != "benchmark_s_saved" }) { current, _ in current }
            }
            if !spec.slo.isEmpty {
                metrics["benchmark_s_saved"] = levels.reduce(0) { $0 + ($1.metrics["benchmark_s_saved"] ?? 0) }
            }
            return LoadOutcome(
                levels: levels, metrics: metrics, pruned: pruned, chosen: levels.count == 1 ? 0 : nil)
        }
    }

    /// The first hard constraint `level` breaks: on `LEVEL.metric`, or on the bare metric when the benchmark
    /// has one level.
    static func broken(_ constraints: [MetricConstraint], level: LevelResult, single: Bool) -> String? {
        for constraint in constraints where constraint.enforcement == .hard {
            let prefix = level.name + "."
            let metric =
                constraint.metric.hasPrefix(prefix)
                ? String(constraint.metric.dropFirst(prefix.count)) : single ? constraint.metric : nil
            guard let metric, let value = level.metrics[metric], constraint.violation(of: value) > 0 else { continue }
            return "\(constraint) (\(constraint.metric) = \(HumanNumber.format(value)))"
        }
        return nil
    }

    /// The highest load at which the level meets every SLO: bracketing from `start`, then bisecting
    /// geometrically until the passing and failing loads are within the tolerance, in at most `maxLevels`
    /// levels. Started from a similar trial's capacity, the first step is the tolerance itself (one step of
    /// concurrency at least), then ×1.5, ×2: when the trial sustains what its neighbour did, two levels settle it;
    /// from the bounds' geometric middle the steps are ×2.
    private func capacity(
        _ search: CapacitySearch, plan: RequestPlan, client: HTTPClient, baseURL: String, gpus: Int, start: Double?
    ) async throws -> LoadOutcome {
        let integral = search.load == .concurrency
        func clamp(_ value: Double) -> Double {
            let bounded = min(max(value, search.lower), search.upper)
            return integral ? bounded.rounded() : bounded
        }
        let hinted = start.map { $0 > 0 } ?? false
        var steps = hinted ? [1 + search.tolerance, 1.5] : []
        func step() -> Double { steps.isEmpty ? 2 : steps.removeFirst() }
        func up(_ load: Double) -> Double {
            let next = clamp(load * step())
            return integral && next <= load ? min(load + 1, search.upper) : next
        }
        func down(_ load: Double) -> Double {
            let next = clamp(load / step())
            return integral && next >= load ? max(load - 1, search.lower) : next
        }
        var load = clamp(hinted ? start! : (search.lower * search.upper).squareRoot())
        var passing: (load: Double, index: Int)?
        var failing: (load: Double, index: Int)?
        var levels: [LevelResult] = []
        let met = Self.attainment(records: [], slo: spec.slo).met
        while levels.count < search.maxLevels {
            try Task.checkCancellation()
            let name = integral ? "c\(Int(load))" : "r" + String(format: "%g", load)
            let result = try await level(
                integral ? .concurrency(Int(load)) : .rate(load), name: name, ordinal: levels.count, plan: plan,
                client: client, baseURL: baseURL, gpus: gpus)
            levels.append(result)
            if met(result.metrics) {
                if passing.map({ load > $0.load }) ?? true { passing = (load, levels.count - 1) }
            } else if failing.map({ load < $0.load }) ?? true {
                failing = (load, levels.count - 1)
            }
            // The next load: bracket until one level passed and one failed, then bisect.
            let next: Double
            switch (passing, failing) {
            case (let pass?, let fail?):
                if fail.load / pass.load <= 1 + search.tolerance { break }
                let middle = clamp((pass.load * fail.load).squareRoot())
                if integral, middle <= pass.load || middle >= fail.load { break }
                next = middle
                load = next
                continue
            case (let pass?, nil):
                if pass.load >= search.upper { break }
                next = up(pass.load)
                load = next
                continue
            case (nil, let fail?):
                if fail.load <= search.lower { break }
                next = down(fail.load)
                load = next
                continue
            case (nil, nil):
                break
            }
            break
        }
        let chosen = passing?.index ?? failing?.index ?? levels.count - 1
        var metrics = levels[chosen].metrics.filter { $0.key != "benchmark_s_saved" && $0.key != "early_stopped" }
        metrics[spec.capacityMetric!] = passing?.load ?? 0
        metrics["capacity_levels"] = Double(levels.count)
        metrics["early_stopped_levels"] = Double(levels.filter { $0.metrics["early_stopped"] == 1 }.count)
        metrics["benchmark_s_saved"] = levels.reduce(0) { $0 + ($1.metrics["benchmark_s_saved"] ?? 0) }
        return LoadOutcome(levels: levels, metrics: metrics, pruned: nil, chosen: chosen)
    }
}
