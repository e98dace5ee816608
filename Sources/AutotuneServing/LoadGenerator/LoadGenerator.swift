import AsyncHTTPClient
public import Autotune
import AutotuneRunner
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// What one request measured.
public struct RequestRecord: Sendable, Hashable, Codable {
    /// Seconds from the start of its level to when it was sent.
    public var sentAt: Double
    /// Seconds to the first token, when one came.
    public var timeToFirstToken: Double?
    /// Seconds between consecutive tokens.
    public var interTokenLatencies: [Double]
    /// Seconds from sending to the end of the response.
    public var endToEnd: Double
    /// Prompt tokens (as the server reported, else the words sent).
    public var promptTokens: Int
    /// Tokens received (as the server reported, else the chunks counted).
    public var outputTokens: Int
    /// Whether it succeeded.
    public var succeeded: Bool
    /// Why it failed.
    public var error: String?
    /// The prompt's planned length in tokens (what the workload asked for).
    public var plannedPromptTokens: Int?
    /// The `max_tokens` it asked for.
    public var maxTokens: Int?
    /// Its conversation and turn, from 0, when the workload has several turns.
    public var session: Int?
    /// Its turn in the conversation.
    public var turn: Int?
}

/// One level of a benchmark: its name (`c8`, `r4.5`), its requests and the metrics computed from them.
public struct LevelResult: Sendable, Hashable, Codable {
    /// `c<concurrency>` or `r<rate>`.
    public var name: String
    /// Seconds the level took.
    public var seconds: Double
    /// Every measured request.
    public var records: [RequestRecord]
    /// The level's metrics (see ``LoadGenerator``).
    public var metrics: [String: Double]
    /// Why an open-loop level's load was not sustained (``Sustainability``), when it was not.
    public var unsustained: String?
}

/// An OpenAI-compatible load generator over AsyncHTTPClient: streaming `/v1/completions` or
/// `/v1/chat/completions`, closed loop at given concurrency levels and open loop at given Poisson rates.
///
/// Per level it reports `requests`, `success_rate`, `errors`, `requests_per_s`, `output_tokens_per_s`,
/// `total_tokens_per_s` (and `…_per_gpu`), and mean/p50/p90/p99 of `ttft_ms`, `itl_ms`, `tpot_ms` and `e2e_ms`.
/// Errors and timeouts are counted, never fatal.
public struct LoadGenerator: Sendable {
    /// The load.
    public var spec: LoadSpec
    /// The model name sent.
    public var model: String
    /// Seeds the requests and their arrivals: the study's seed, so every trial sends the same ones.
    public var seed: UInt64
    /// The dataset's or trace's rows when the workload reads a file, already read (``loadRows()``).
    var rows: [WorkloadRow]?

    /// Creates a generator.
    public init(spec: LoadSpec, model: String, seed: UInt64 = 0) {
        self.spec = spec
        self.model = model
        self.seed = seed
    }

    /// Warms up, then runs every level against `baseURL` (`http://127.0.0.1:30001`); `gpus` divides the
    /// throughput for the per-GPU metrics.
    public func run(baseURL: String, gpus: Int = 1) async throws -> [LevelResult] {
        try await withClient { client in
            let plan = try await prepare(client: client, baseURL: baseURL)
            try await warmUp(client: client, baseURL: baseURL, plan: plan)
            var results: [LevelResult] = []
            for (index, load) in fixedLevels.enumerated() {
                try Task.checkCancellation()
                results.append(
                    try await level(
                        load, name: spec.levelNames[index], ordinal: index, plan: plan, client: client,
                        baseURL: baseURL, gpus: gpus))
            }
            return results
        }
    }

    /// The level plan of this benchmark against the server at `baseURL`: the workload's file read and filtered,
    /// and synthetic text calibrated to the server's tokenizer.
    func prepare(client: HTTPClient, baseURL: String) async throws -> RequestPlan {
        try plan(tokensPerWord: await calibrate(client: client, baseURL: baseURL))
    }

    /// The plan for a server whose tokenizer makes `tokensPerWord` tokens of a word of synthetic text.
    func plan(tokensPerWord: Double) throws -> RequestPlan {
        let workload = spec.effectiveWorkload
        var rows = try rows ?? Self.loadRows(workload)
        if let limit = workload.maxPromptTokens {
            rows = rows.filter { row in
                (row.promptTokens
                    ?? Int(Double(row.turns.reduce(0) { $0 + WorkloadFiles.words($1.content) }) * tokensPerWord))
                    <= limit
            }
        }
        if let limit = workload.maxOutputTokens { rows = rows.filter { ($0.outputTokens ?? 0) <= limit } }
        switch workload.source {
        case .synthetic: break
        case .dataset(let dataset) where rows.isEmpty:
            throw ExperimentError(stage: .benchmark, message: "\(dataset.path): no row is within the length limits")
        case .trace(let trace) where rows.isEmpty:
            throw ExperimentError(stage: .benchmark, message: "\(trace.path): no row is within the length limits")
        default: break
        }
        return RequestPlan(workload: workload, rows: rows, seed: seed, tokensPerWord: tokensPerWord)
    }

    /// The requests level `level` sends, in order, as JSON lines a client in another language can replay:
    /// `{"at": SECONDS, "session": S, "turn": T, "messages": [{"role", "content"}], "max_tokens": N}`, with `at`
    /// (the session's arrival, from the level's start) on an open-loop level's first turns only. A later turn's
    /// history holds the planned answers' places as the generator fills them with the server's answers, so only
    /// single-turn workloads replay byte for byte. `tokensPerWord`: as the server's tokenizer counts the synthetic
    /// text (1 on the simulated engine).
    public func plannedRequests(level: Int = 0, tokensPerWord: Double = 1) throws -> [String] {
        let plan = try plan(tokensPerWord: tokensPerWord)
        var rate: Double?
        if case .rate(let value) = fixedLevels[level] { rate = value }
        let sessions = plan.sessionCount(forRequests: spec.requests)
        let arrivals = rate.map { plan.arrivals(count: sessions, rate: $0, level: level) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        struct Line: Encodable {
            var at: Double?
            var session: Int
            var turn: Int
            var messages: [WorkloadRow.Turn]
            var max_tokens: Int
        }
        var lines: [String] = []
        for index in 0..<min(sessions, arrivals?.count ?? sessions) {
            for request in plan.session(index, level: level) where lines.count < spec.requests {
                let line = Line(
                    at: request.turn == 0 ? arrivals?[index] : nil, session: index, turn: request.turn,
                    messages: request.messages, max_tokens: request.maxTokens)
                lines.append(String(decoding: try encoder.encode(line), as: UTF8.self))
            }
        }
        return lines
    }

    /// The rows of the workload's dataset or trace file; none for synthetic prompts.
    ///
    /// A file that changed since the study started would send other requests than its first trials did: it
    /// fails the trial, naming the file.
    static func loadRows(_ workload: Workload) throws -> [WorkloadRow] {
        func read(_ path: String, fingerprint: String) throws -> String {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ExperimentError(stage: .benchmark, message: "cannot read the workload file \(path)")
            }
            guard WorkloadFiles.fingerprint(data) == fingerprint else {
                throw ExperimentError(
                    stage: .benchmark,
                    message:
                        "the workload file \(path) changed since the study started: its trials would not be measured on the same requests; restore it, or start a new study"
                )
            }
            return String(decoding: data, as: UTF8.self)
        }
        do {
            switch workload.source {
            case .synthetic: return []
            case .dataset(let dataset):
                return try WorkloadFiles.dataset(
                    read(dataset.path, fingerprint: dataset.fingerprint), format: dataset.format, path: dataset.path)
            case .trace(let trace):
                return try WorkloadFiles.trace(
                    read(trace.path, fingerprint: trace.fingerprint), format: trace.format, path: trace.path)
            }
        } catch let error as AutotuneError {
            throw ExperimentError(stage: .benchmark, message: error.message)
        }
    }

    /// Tokens per word of the plan's synthetic text on the server's tokenizer: from its `/tokenize` endpoint
    /// (vLLM, SGLang, llama.cpp), else the `usage` of a one-token completion, else 1 (words taken as tokens).
    ///
    /// A server that cannot be reached at all is not asked three times: each ask would wait out its timeout
    /// (the client retries a refused connection until then), and the benchmark's own requests record the error.
    func calibrate(client: HTTPClient, baseURL: String) async -> Double {
        do { return try await calibrated(client: client, baseURL: baseURL) } catch { return 1 }
    }

    /// ``calibrate(client:baseURL:)``'s asks; throws when the server could not be reached.
    private func calibrated(client: HTTPClient, baseURL: String) async throws -> Double {
        let probe = RequestPlan(workload: spec.effectiveWorkload, rows: [], seed: seed, tokensPerWord: 1)
        let text = probe.text(tokens: 200, key: 0xCA11)
        let words = Double(WorkloadFiles.words(text))
        for body in [
            Self.json(["model": .string(model), "prompt": .string(text)]),
            Self.json(["content": .string(text)]),
        ] {
            guard let reply = try await post(client: client, url: baseURL + "/tokenize", body: body),
                case .object(let fields) = reply
            else { continue }
            let count =
                fields["count"]?.doubleValue
                ?? fields["tokens"].flatMap {
                    if case .array(let tokens) = $0 { Double(tokens.count) } else { nil }
                }
            if let count, count > 0 { return count / words }
        }
        let body = Self.json([
            "model": .string(model), "prompt": .string(text), "max_tokens": .number(1), "temperature": .number(0),
        ])
        if let reply = try await post(client: client, url: baseURL + "/v1/completions", body: body),
            case .object(let usage)? = reply["usage"], let prompt = usage["prompt_tokens"]?.doubleValue, prompt > 0
        {
            return prompt / words
        }
        return 1
    }

    /// A JSON POST's decoded reply, `nil` when the server answers with an error or not with JSON; throws when
    /// the server could not be reached or did not answer in time.
    private func post(client: HTTPClient, url: String, body: String) async throws -> JSONValue? {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await client.execute(
            request, timeout: min(.seconds(10), requestTimeout))
        guard response.status == .ok else { return nil }
        guard let data = try? await response.body.collect(upTo: 1 << 22) else { return nil }
        return try? JSONDecoder().decode(JSONValue.self, from: Data(data.readableBytesView))
    }

    /// The levels of a benchmark without a search, in order: concurrencies, then rates.
    var fixedLevels: [LevelLoad] { spec.concurrency.map { .concurrency($0) } + spec.rates.map { .rate($0) } }

    /// The spec's request timeout in the HTTP client's units.
    private var requestTimeout: TimeAmount { .milliseconds(Int64(spec.requestTimeout.seconds * 1000)) }

    /// An HTTP client sized for the load, shut down after `body` whatever happens.
    func withClient<T: Sendable>(_ body: (HTTPClient) async throws -> T) async throws -> T {
        var configuration = HTTPClient.Configuration()
        // The default pool opens 8 connections per host: enough for a browser, not for concurrency 64.
        configuration.connectionPool = .init(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 4096)
        configuration.timeout = .init(
            connect: .seconds(10), read: requestTimeout)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            let result = try await body(client)
            try await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    /// Sends the warm-up requests, from a level of their own so the measured ones are not served from them.
    func warmUp(client: HTTPClient, baseURL: String, plan: RequestPlan) async throws {
        var sent = 0
        var session = 0
        while sent < spec.warmupRequests {
            for request in plan.session(session, level: Self.warmupLevel) where sent < spec.warmupRequests {
                _ = await send(client: client, baseURL: baseURL, request: request, levelStart: .now)
                sent += 1
            }
            session += 1
        }
    }

    /// The level number the warm-up requests are planned at.
    static let warmupLevel = 1 << 20

    /// A level's load: closed loop at a concurrency, or open loop at a Poisson rate.
    enum LevelLoad: Sendable, Hashable {
        case concurrency(Int)
        case rate(Double)
    }

    /// Runs one level, the `ordinal`-th of the benchmark; with SLOs, watches it and ends it early once a
    /// percentile SLO is clearly broken.
    func level(
        _ load: LevelLoad, name: String, ordinal: Int, plan: RequestPlan, client: HTTPClient, baseURL: String,
        gpus: Int
    ) async throws -> LevelResult {
        let start = ContinuousClock.now
        let planned = spec.duration == nil ? spec.requests : nil
        let monitor = LevelMonitor(slo: spec.slo, planned: planned)
        let records: [RequestRecord]
        switch load {
        case .concurrency(let concurrency):
            records = try await closedLoop(
                client: client, baseURL: baseURL, concurrency: concurrency, plan: plan, ordinal: ordinal,
                start: start, monitor: monitor)
        case .rate(let rate):
            records = try await openLoop(
                client: client, baseURL: baseURL, rate: rate, plan: plan, ordinal: ordinal, start: start,
                monitor: monitor)
        }
        var result = summarize(name: name, records: records, seconds: (ContinuousClock.now - start).seconds, gpus: gpus)
        if case .rate = load, !monitor.stopped,
            let judgement = Sustainability(records: records, ttftLimit: Self.ttftLimit(spec.slo))
        {
            result.metrics.merge(judgement.metrics) { _, new in new }
            result.unsustained = judgement.failure
        }
        if !spec.slo.isEmpty {
            let (good, met) = Self.attainment(records: records, slo: spec.slo)
            result.metrics["goodput"] = Double(good) / max(result.seconds, 1e-9)
            result.metrics["slo_attainment"] = records.isEmpty ? 0 : Double(good) / Double(records.count)
            result.metrics["slo_met"] = met(result.metrics) ? 1 : 0
            result.metrics["early_stopped"] = monitor.stopped ? 1 : 0
            result.metrics["benchmark_s_saved"] = monitor.saved(
                elapsed: result.seconds, finished: records, plannedEnd: monitor.plannedEnd)
        }
        return result
    }

    /// `concurrency` workers, each taking the next session and sending its turns one after the other, the next
    /// request as soon as the last one ends.
    private func closedLoop(
        client: HTTPClient, baseURL: String, concurrency: Int, plan: RequestPlan, ordinal: Int,
        start: ContinuousClock.Instant, monitor: LevelMonitor
    ) async throws -> [RequestRecord] {
        let next = Locked(0)
        let sent = Locked(0)
        let total = spec.duration == nil ? spec.requests : Int.max
        let sessions = spec.duration == nil ? plan.sessionCount(forRequests: total) : Int.max
        let deadline = spec.duration.map { start + $0 }
        return try await withThrowingTaskGroup(of: [RequestRecord].self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var mine: [RequestRecord] = []
                    sessions: while !monitor.stopped {
                        try Task.checkCancellation()
                        if let deadline, ContinuousClock.now >= deadline { break }
                        let index = next.withLock { value in
                            defer { value += 1 }
                            return value
                        }
                        guard index < sessions else { break }
                        for request in plan.session(index, level: ordinal) {
                            let admitted = sent.withLock { count in
                                defer { count += 1 }
                                return count < total
                            }
                            guard admitted, !monitor.stopped else { break sessions }
                            if let deadline, ContinuousClock.now >= deadline { break sessions }
                            let record = await send(
                                client: client, baseURL: baseURL, request: request, levelStart: start)
                            if monitor.record(record) { mine.append(record) }
                        }
                    }
                    return mine
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
    }

    /// Sessions that start at the workload's arrival times for `rate` (or a trace's own), whatever the server's
    /// pace; a session's later turns follow its earlier ones.
    private func openLoop(
        client: HTTPClient, baseURL: String, rate: Double, plan: RequestPlan, ordinal: Int,
        start: ContinuousClock.Instant, monitor: LevelMonitor
    ) async throws -> [RequestRecord] {
        let limit = spec.duration?.seconds ?? .infinity
        let sessions = spec.duration == nil ? plan.sessionCount(forRequests: spec.requests) : 1_000_000
        let arrivals = plan.arrivals(count: sessions, rate: rate, level: ordinal, limit: limit)
        let requests = spec.duration == nil ? min(spec.requests, arrivals.count * plan.turnsPerSession) : nil
        monitor.plan(requests: requests ?? arrivals.count * plan.turnsPerSession, lastArrival: arrivals.last)
        return try await withThrowingTaskGroup(of: [RequestRecord].self) { group in
            var budget = requests ?? Int.max
            for (index, at) in arrivals.enumerated() {
                let wait = start + .milliseconds(Int(at * 1000)) - .now
                if wait > .zero { try await Task.sleep(for: wait) }
                if monitor.stopped || budget <= 0 { break }
                let turns = Array(plan.session(index, level: ordinal).prefix(budget))
                budget -= turns.count
                group.addTask {
                    var mine: [RequestRecord] = []
                    for request in turns {
                        if monitor.stopped { break }
                        let record = await send(client: client, baseURL: baseURL, request: request, levelStart: start)
                        if monitor.record(record) { mine.append(record) }
                    }
                    return mine
                }
            }
            if monitor.stopped { group.cancelAll() }
            var records: [RequestRecord] = []
            while let finished = try await group.next() {
                records += finished
                if monitor.stopped { group.cancelAll() }
            }
            return records
        }
    }

    /// How many requests met every per-request SLO (`ttft_ms`, `tpot_ms`, `e2e_ms` from their percentile
    /// limits, as `vllm bench serve --goodput` counts), and a check of a level's metrics against the SLOs.
    static func attainment(records: [RequestRecord], slo: [String: Double]) -> (
        good: Int, met: @Sendable ([String: Double]) -> Bool
    ) {
        let perRequest = slo.compactMap { metric, limit -> (String, Double)? in
            guard let base = LevelMonitor.base(of: metric) else { return nil }
            return (base, limit)
        }
        let good = records.filter { record in
            guard record.succeeded else { return false }
            return perRequest.allSatisfy { base, limit in
                guard let value = LevelMonitor.value(base, of: record) else { return true }
                return value <= limit
            }
        }.count
        // An open-loop level whose load was not sustained fails whatever its percentiles say (``Sustainability``).
        let met: @Sendable ([String: Double]) -> Bool = { metrics in
            (metrics["success_rate"] ?? 0) >= 0.99 && (metrics["sustained"] ?? 1) == 1
                && slo.allSatisfy { metric, limit in (metrics[metric] ?? .infinity) <= limit }
        }
        return (good, met)
    }

    /// The tightest TTFT percentile limit among the SLOs, in milliseconds.
    static func ttftLimit(_ slo: [String: Double]) -> Double? {
        slo.filter { $0.key.hasPrefix("ttft_ms_") }.map(\.value).min()
    }

    /// Sends one streaming request and times it.
    func send(client: HTTPClient, baseURL: String, request planned: PlannedRequest, levelStart: ContinuousClock.Instant)
        async -> RequestRecord
    {
        let body: String
        let path: String
        switch spec.endpoint {
        case .completions:
            path = "/v1/completions"
            body = Self.json([
                "model": .string(model), "prompt": .string(planned.promptText),
                "max_tokens": .number(Double(planned.maxTokens)), "stream": .bool(true),
                "stream_options": .object(["include_usage": .bool(true)]), "ignore_eos": .bool(true),
                "temperature": .number(0),
            ])
        case .chat:
            path = "/v1/chat/completions"
            body = Self.json([
                "model": .string(model),
                "messages": .array(
                    planned.messages.map {
                        .object(["role": .string($0.role), "content": .string($0.content)])
                    }),
                "max_tokens": .number(Double(planned.maxTokens)), "stream": .bool(true),
                "stream_options": .object(["include_usage": .bool(true)]), "ignore_eos": .bool(true),
                "temperature": .number(0),
            ])
        }
        let sent = ContinuousClock.now
        var record = RequestRecord(
            sentAt: (sent - levelStart).seconds,
            timeToFirstToken: nil,
            interTokenLatencies: [],
            endToEnd: 0,
            promptTokens: planned.promptTokens,
            outputTokens: 0,
            succeeded: false,
            error: nil,
            plannedPromptTokens: planned.promptTokens,
            maxTokens: planned.maxTokens,
            session: plan_turns(planned) ? planned.session : nil,
            turn: plan_turns(planned) ? planned.turn : nil
        )
        do {
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: "application/json")
            let request = try HTTPClient.Request(
                url: baseURL + path, method: .POST, headers: headers, body: .string(body))
            let stream = try await execute(request, client: client, sent: sent)
            record.endToEnd = (stream.finished - sent).seconds
            if let status = stream.status, status != .ok {
                record.error = "HTTP \(status.code): \(String(decoding: stream.errorBody.prefix(200), as: UTF8.self))"
                return record
            }
            record.timeToFirstToken = stream.timeToFirstToken
            record.interTokenLatencies = stream.interTokenLatencies
            record.outputTokens = stream.reported?.completion ?? stream.chunks
            if let prompt = stream.reported?.prompt { record.promptTokens = prompt }
            record.succeeded = stream.chunks > 0
            if stream.chunks == 0 { record.error = "the response streamed no token" }
        } catch {
            record.endToEnd = (ContinuousClock.now - sent).seconds
            record.error = "\(error)"
        }
        return record
    }

    /// Executes a request, sending it again (up to twice) when the server closed a kept-alive connection
    /// before answering: servers such as llama.cpp's close a connection after a few requests, racing the
    /// client's reuse of it, and a request that got no response head was never processed.
    private func execute(_ request: HTTPClient.Request, client: HTTPClient, sent: ContinuousClock.Instant)
        async throws -> TokenStream.Result
    {
        var attempt = 0
        while true {
            let delegate = TokenStream(sent: sent)
            do {
                let task = client.execute(
                    request: request, delegate: delegate,
                    deadline: .now() + requestTimeout)
                // A level that ends early, or a trial that is stopped, cancels the request on the wire.
                return try await withTaskCancellationHandler {
                    try await task.futureResult.get()
                } onCancel: {
                    task.cancel()
                }
            } catch let error as HTTPClientError where error == .remoteConnectionClosed && attempt < 2 {
                attempt += 1
            } catch let error as ChannelError where error == .ioOnClosedChannel && attempt < 2 {
                attempt += 1
            }
        }
    }

    /// The level's metrics from its records.
    func summarize(name: String, records: [RequestRecord], seconds: Double, gpus: Int) -> LevelResult {
        let good = records.filter(\.succeeded)
        var metrics: [String: Double] = [
            "requests": Double(records.count),
            "errors": Double(records.count - good.count),
            "success_rate": records.isEmpty ? 0 : Double(good.count) / Double(records.count),
            "duration_s": seconds,
        ]
        let outputTokens = Double(good.reduce(0) { $0 + $1.outputTokens })
        let totalTokens = outputTokens + Double(good.reduce(0) { $0 + $1.promptTokens })
        let safeSeconds = max(seconds, 1e-9)
        metrics["requests_per_s"] = Double(good.count) / safeSeconds
        metrics["output_tokens_per_s"] = outputTokens / safeSeconds
        metrics["total_tokens_per_s"] = totalTokens / safeSeconds
        metrics["output_tokens_per_s_per_gpu"] = outputTokens / safeSeconds / Double(max(gpus, 1))
        if !good.isEmpty {
            metrics["prompt_tokens_mean"] = Double(good.reduce(0) { $0 + $1.promptTokens }) / Double(good.count)
            metrics["output_tokens_mean"] = outputTokens / Double(good.count)
        }
        metrics["total_tokens_per_s_per_gpu"] = totalTokens / safeSeconds / Double(max(gpus, 1))
        func distribution(_ name: String, _ values: [Double]) {
            guard !values.isEmpty else { return }
            let sorted = values.sorted()
            metrics["\(name)_mean"] = sorted.reduce(0, +) / Double(sorted.count)
            for (label, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)] {
                metrics["\(name)_\(label)"] = Self.percentile(sorted, q)
            }
        }
        distribution("ttft_ms", good.compactMap(\.timeToFirstToken).map { $0 * 1000 })
        distribution("itl_ms", good.flatMap(\.interTokenLatencies).map { $0 * 1000 })
        distribution(
            "tpot_ms",
            good.compactMap { record in
                guard let first = record.timeToFirstToken, record.outputTokens > 1 else { return nil }
                return (record.endToEnd - first) / Double(record.outputTokens - 1) * 1000
            }
        )
        distribution("e2e_ms", good.map { $0.endToEnd * 1000 })
        return LevelResult(name: name, seconds: seconds, records: records, metrics: metrics)
    }

    /// Linear interpolation between closest ranks of a sorted sample.
    static func percentile(_ sorted: [Double], _ q: Double) -> Double {
        let position = q * Double(sorted.count - 1)
        let low = Int(position.rounded(.down))
        let high = min(low + 1, sorted.count - 1)
        return sorted[low] + (sorted[high] - sorted[low]) * (position - Double(low))
    }

    /// Whether `request` is one of a conversation's turns (worth recording which).
    private func plan_turns(_ request: PlannedRequest) -> Bool {
        spec.effectiveWorkload.turns > 1
    }

    static func json(_ object: [String: JSONValue]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(JSONValue.object(object))) ?? Data(), as: UTF8.self)
    }
}

/// Reads one streamed response as it arrives, timestamping each token.
///
/// AsyncHTTPClient calls a delegate's methods on the request's event loop, one at a time and never
/// concurrently, which is what makes the mutable state safe; it avoids a hop from the event loop to a task for
/// every chunk, which is where an async body sequence spends its time at tens of thousands of tokens a second.
final class TokenStream: HTTPClientResponseDelegate, @unchecked Sendable {
    /// What the response gave.
    struct Result: Sendable {
        var status: HTTPResponseStatus?
        var errorBody: [UInt8] = []
        var timeToFirstToken: Double?
        var interTokenLatencies: [Double] = []
        var chunks = 0
        var reported: (prompt: Int, completion: Int)?
        var finished: ContinuousClock.Instant
    }

    private let sent: ContinuousClock.Instant
    private var result: Result
    private var parser = ServerSentEvents()
    private var last: ContinuousClock.Instant

    init(sent: ContinuousClock.Instant) {
        self.sent = sent
        last = sent
        result = Result(finished: sent)
    }

    func didReceiveHead(task: HTTPClient.Task<Result>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        result.status = head.status
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Result>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        guard result.status == .ok else {
            if result.errorBody.count < 1 << 16 { result.errorBody += buffer.readableBytesView }
            return task.eventLoop.makeSucceededVoidFuture()
        }
        parser.feed(buffer) { event in
            let carries: Bool
            switch StreamChunk.scan(event) {
            case .done, .empty: return
            case .token: carries = true
            case .other:
                // Usage, or a shape the scan does not know: the full decoder decides.
                guard let chunk = try? JSONDecoder().decode(StreamChunk.self, from: Data(buffer: event)) else { return }
                if let usage = chunk.usage { result.reported = (usage.prompt_tokens, usage.completion_tokens) }
                carries = chunk.choices?.first?.textContent.isEmpty == false
            }
            guard carries else { return }
            let now = ContinuousClock.now
            if result.chunks == 0 {
                result.timeToFirstToken = (now - sent).seconds
            } else {
                result.interTokenLatencies.append((now - last).seconds)
            }
            last = now
            result.chunks += 1
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didFinishRequest(task: HTTPClient.Task<Result>) throws -> Result {
        result.finished = .now
        return result
    }
}

/// One streamed chunk of either API.
struct StreamChunk: Decodable {
    struct Choice: Decodable {
        struct Delta: Decodable { var content: String? }
        var text: String?
        var delta: Delta?

        var textContent: String { text ?? delta?.content ?? "" }
    }

    struct Usage: Decodable {
        var prompt_tokens: Int
        var completion_tokens: Int
    }

    var choices: [Choice]?
    var usage: Usage?
}

extension StreamChunk {
    /// What a `data:` payload is, told from its bytes without decoding the JSON, since one arrives per token.
    enum Kind: Equatable {
        /// `[DONE]`.
        case done
        /// A choice whose text (`text` or `delta.content`) is not empty.
        case token
        /// A choice whose text is empty or null (a role-only first chunk).
        case empty
        /// Anything else, or a chunk with usage: decode it.
        case other
    }

    /// Classifies `payload` by finding the `"text"` or `"content"` key and looking at its value's first byte.
    /// Inside a JSON string every quote is escaped, so the key pattern cannot match within generated text.
    static func scan(_ payload: UnsafeBufferPointer<UInt8>) -> Kind {
        if payload.elementsEqual("[DONE]".utf8) { return .done }
        if let usage = find(#""usage""#, in: payload, from: 0) {
            // `"usage":null` on every chunk (vLLM with include_usage) is no usage at all.
            guard let value = valueStart(after: usage, in: payload), payload[value] == UInt8(ascii: "n") else {
                return .other
            }
        }
        for key: StaticString in [#""text""#, #""content""#] {
            guard let end = find(key, in: payload, from: 0) else { continue }
            guard let value = valueStart(after: end, in: payload) else { return .other }
            if payload[value] == UInt8(ascii: "n") { return .empty }  // null
            guard payload[value] == UInt8(ascii: "\""), value + 1 < payload.count else { return .other }
            return payload[value + 1] == UInt8(ascii: "\"") ? .empty : .token
        }
        return .other
    }

    /// The index just past the first occurrence of `needle` at or after `start`.
    private static func find(_ needle: StaticString, in haystack: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        let count = needle.utf8CodeUnitCount
        guard haystack.count - start >= count, let base = haystack.baseAddress else { return nil }
        let first = needle.utf8Start.pointee
        var index = start
        while index <= haystack.count - count {
            if base[index] == first, memcmp(base + index, needle.utf8Start, count) == 0 { return index + count }
            index += 1
        }
        return nil
    }

    /// The index of a key's value: past `:` and blanks.
    private static func valueStart(after index: Int, in payload: UnsafeBufferPointer<UInt8>) -> Int? {
        var index = index
        while index < payload.count, payload[index] == 0x20 || payload[index] == 0x09 { index += 1 }
        guard index < payload.count, payload[index] == UInt8(ascii: ":") else { return nil }
        index += 1
        while index < payload.count, payload[index] == 0x20 || payload[index] == 0x09 { index += 1 }
        return index < payload.count ? index : nil
    }
}

/// Splits a server-sent-event byte stream into the `data:` payloads of its events.
///
/// Bytes are kept until a line ends, and only complete lines are cut: a UTF-8 character split across two
/// network chunks is whole again before anything reads it (a newline byte never occurs inside one).
struct ServerSentEvents {
    private var pending: [UInt8] = []

    /// Calls `handle` with each payload `buffer` completes, in order, without copying it.
    mutating func feed(_ buffer: ByteBuffer, _ handle: (UnsafeBufferPointer<UInt8>) -> Void) {
        buffer.withUnsafeReadableBytes { pending.append(contentsOf: $0) }
        cut(handle)
    }

    /// The payloads `bytes` completes, as strings (for tests and tools).
    mutating func feed(_ bytes: some Sequence<UInt8>) -> [String] {
        pending.append(contentsOf: bytes)
        var payloads: [String] = []
        cut { payloads.append(String(decoding: $0, as: UTF8.self)) }
        return payloads
    }

    private mutating func cut(_ handle: (UnsafeBufferPointer<UInt8>) -> Void) {
        let consumed: Int = pending.withUnsafeBufferPointer { bytes in
            var start = 0
            while let offset = memchr(bytes.baseAddress! + start, 0x0A, bytes.count - start) {
                let newline = bytes.baseAddress!.distance(to: offset.assumingMemoryBound(to: UInt8.self))
                var end = newline
                if end > start, bytes[end - 1] == 0x0D { end -= 1 }
                if end - start >= 5, memcmp(bytes.baseAddress! + start, "data:", 5) == 0 {
                    var from = start + 5
                    while from < end, bytes[from] == 0x20 { from += 1 }
                    var to = end
                    while to > from, bytes[to - 1] == 0x20 { to -= 1 }
                    handle(UnsafeBufferPointer(rebasing: bytes[from..<to]))
                }
                start = newline + 1
            }
            return start
        }
        if consumed == pending.count {
            pending.removeAll(keepingCapacity: true)
        } else if consumed > 0 {
            pending.removeSubrange(..<consumed)
        }
    }
}

extension Duration {
    var seconds: Double {
        let (whole, fraction) = components
        return Double(whole) + Double(fraction) * 1e-18
    }
}
