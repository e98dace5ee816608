import Foundation

/// Whether an open-loop level's load was sustained: the server finished requests as fast as they arrived and no
/// queue built up during the level.
///
/// A short level can pass its SLOs at a rate the server cannot keep up: 200 Poisson requests at 54 req/s are a
/// four-second burst, and a server that finishes 45 a second ends it with a queue that never had time to push
/// the 99th percentile past the limit. Two signs give it away, and either fails the level:
///
/// - **Achieved short of offered.** Requests arrived at `offered_rate` (their count over the span of their send
///   times, the middle 90% of them, so one late straggler does not move it) and completed at `achieved_rate`
///   (the same over completion times). A server that keeps up completes at the rate requests arrive, whatever
///   its latency; one that cannot, at its own pace. The rates are counts over time, so each carries a relative
///   noise of about 1/√n: the level fails when the achieved rate falls short by more than 5% and by more than
///   two and a half of those standard errors.
/// - **A growing queue.** Time to first token is a request's wait in the queue plus its prefill: with the queue
///   growing, it rises through the level. The median TTFT of the last third of requests (by send time) against
///   that of the middle third (the first third still sees the server empty): the level fails when it rose by
///   half and by more than a tenth of the TTFT limit (50 ms without one).
struct Sustainability: Sendable, Hashable {
    /// Requests per second that arrived.
    var offeredRate: Double
    /// Requests per second that completed.
    var achievedRate: Double
    /// How much the median TTFT rose from the middle third of the level to the last, in milliseconds; `nil`
    /// when too few requests had a first token.
    var ttftRise: Double?
    /// Why the load was not sustained, or `nil` when it was.
    var failure: String?

    /// The fewest requests a judgement is made on: fewer say nothing about a queue.
    static let minimumRequests = 30

    /// The judgement of an open-loop level's `records`; `ttftLimit` is the TTFT SLO in milliseconds, if any.
    /// `nil` when there are too few records to judge.
    init?(records: [RequestRecord], ttftLimit: Double?) {
        guard records.count >= Self.minimumRequests else { return nil }
        func rate(_ times: [Double]) -> Double {
            let sorted = times.sorted()
            let low = Int(Double(sorted.count - 1) * 0.05)
            let high = Int((Double(sorted.count - 1) * 0.95).rounded(.up))
            let span = sorted[high] - sorted[low]
            return span > 0 ? Double(high - low) / span : .infinity
        }
        offeredRate = rate(records.map(\.sentAt))
        achievedRate = rate(records.map { $0.sentAt + $0.endToEnd })
        let n = Double(records.count) * 0.9
        let allowance = max(0.05, 2.5 / n.squareRoot())
        var failures: [String] = []
        if achievedRate < offeredRate * (1 - allowance) {
            failures.append(
                "requests completed at \(Self.format(achievedRate))/s while they arrived at \(Self.format(offeredRate))/s"
            )
        }
        let bySend = records.filter { $0.timeToFirstToken != nil }.sorted { $0.sentAt < $1.sentAt }
        if bySend.count >= Self.minimumRequests {
            let third = bySend.count / 3
            let middle = Self.median(bySend[third..<(2 * third)].map { $0.timeToFirstToken! * 1000 })
            let last = Self.median(bySend[(2 * third)...].map { $0.timeToFirstToken! * 1000 })
            ttftRise = last - middle
            let margin = max(50, 0.1 * (ttftLimit ?? 500))
            if last > 1.5 * middle, last - middle > margin {
                failures.append(
                    "time to first token rose from \(Self.format(middle)) ms to \(Self.format(last)) ms through the level: a queue was building"
                )
            }
        }
        failure = failures.isEmpty ? nil : failures.joined(separator: "; ")
    }

    /// Whether the load was sustained.
    var sustained: Bool { failure == nil }

    /// The level metrics this judgement adds.
    var metrics: [String: Double] {
        var metrics = ["offered_rate": offeredRate, "achieved_rate": achievedRate, "sustained": sustained ? 1 : 0]
        if let ttftRise { metrics["ttft_rise_ms"] = ttftRise }
        return metrics
    }

    private static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted.count % 2 == 1
            ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    private static func format(_ value: Double) -> String { String(format: value < 10 ? "%.2f" : "%.1f", value) }
}
