import AsyncHTTPClient
public import Autotune
import AutotuneRunner
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

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
    /// Seeds prompts and Poisson arrivals.
    public var seed: UInt64

    /// Creates a generator.
    public init(spec: LoadSpec, model: String, seed: UInt64 = 0) {
        self.spec = spec
        self.model = model
        self.seed = seed
    }

    /// Warms up, then runs every level against `baseURL` (`http://127.0.0.1:30001`); `gpus` divides the
    /// throughput for the per-GPU metrics.
    public func run(baseURL: String, gpus: Int = 1) async throws -> [LevelResult] {
        var configuration = HTTPClient.Configuration()
        // The default pool opens 8 connections per host: enough for a browser, not for concurrency 64.
        configuration.connectionPool = .init(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 4096)
        configuration.timeout = .init(
            connect: .seconds(10), read: .milliseconds(Int64(spec.requestTimeout.seconds * 1000)))
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            let results = try await runLevels(client: client, baseURL: baseURL, gpus: gpus)
            try await client.shutdown()
            return results
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    private func runLevels(client: HTTPClient, baseURL: String, gpus: Int) async throws -> [LevelResult] {
        for index in 0..<spec.warmupRequests {
            _ = await send(client: client, baseURL: baseURL, index: -1 - index, levelStart: .now)
        }
        var results: [LevelResult] = []
        for concurrency in spec.concurrency {
            try Task.checkCancellation()
            results.append(try await closedLoop(client: client, baseURL: baseURL, concurrency: concurrency, gpus: gpus))
        }
        for rate in spec.rates {
            try Task.checkCancellation()
            results.append(try await openLoop(client: client, baseURL: baseURL, rate: rate, gpus: gpus))
        }
        return results
    }

    /// `concurrency` workers, each sending its next request as soon as its last one ends.
    private func closedLoop(client: HTTPClient, baseURL: String, concurrency: Int, gpus: Int) async throws
        -> LevelResult
    {
        let start = ContinuousClock.now
        let next = Locked(0)
        let total = spec.duration == nil ? spec.requests : Int.max
        let deadline = spec.duration.map { start + $0 }
        let records = try await withThrowingTaskGroup(of: [RequestRecord].self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var mine: [RequestRecord] = []
                    while true {
                        try Task.checkCancellation()
                        if let deadline, ContinuousClock.now >= deadline { break }
                        let index = next.withLock { value in
                            defer { value += 1 }
                            return value
                        }
                        guard index < total else { break }
                        mine.append(await send(client: client, baseURL: baseURL, index: index, levelStart: start))
                    }
                    return mine
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        return summarize(
            name: spec.levelNames[spec.concurrency.firstIndex(of: concurrency) ?? 0], records: records,
            seconds: (ContinuousClock.now - start).seconds, gpus: gpus)
    }

    /// Requests sent at Poisson arrival times of rate `rate`, whatever the server's pace.
    private func openLoop(client: HTTPClient, baseURL: String, rate: Double, gpus: Int) async throws -> LevelResult {
        let start = ContinuousClock.now
        var generator = SeededGenerator(seed: seed ^ UInt64(rate * 1000))
        var arrival = 0.0
        var arrivals: [Double] = []
        let limit = spec.duration?.seconds ?? .infinity
        while arrivals.count < (spec.duration == nil ? spec.requests : 1_000_000) {
            arrival += -log(max(generator.nextUnit(), 1e-12)) / rate
            if arrival > limit { break }
            arrivals.append(arrival)
        }
        let records = try await withThrowingTaskGroup(of: RequestRecord.self) { group in
            for (index, at) in arrivals.enumerated() {
                let wait = start + .milliseconds(Int(at * 1000)) - .now
                if wait > .zero { try await Task.sleep(for: wait) }
                group.addTask { await send(client: client, baseURL: baseURL, index: index, levelStart: start) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let name = spec.levelNames[spec.concurrency.count + (spec.rates.firstIndex(of: rate) ?? 0)]
        return summarize(name: name, records: records, seconds: (ContinuousClock.now - start).seconds, gpus: gpus)
    }

    /// Sends one streaming request and times it.
    func send(client: HTTPClient, baseURL: String, index: Int, levelStart: ContinuousClock.Instant) async
        -> RequestRecord
    {
        let prompt = Self.prompt(words: spec.inputTokens, variant: index)
        let body: String
        let path: String
        switch spec.endpoint {
        case .completions:
            path = "/v1/completions"
            body = Self.json([
                "model": .string(model), "prompt": .string(prompt), "max_tokens": .number(Double(spec.outputTokens)),
                "stream": .bool(true), "stream_options": .object(["include_usage": .bool(true)]),
                "ignore_eos": .bool(true), "temperature": .number(0),
            ])
        case .chat:
            path = "/v1/chat/completions"
            body = Self.json([
                "model": .string(model),
                "messages": .array([.object(["role": .string("user"), "content": .string(prompt)])]),
                "max_tokens": .number(Double(spec.outputTokens)), "stream": .bool(true),
                "stream_options": .object(["include_usage": .bool(true)]), "ignore_eos": .bool(true),
                "temperature": .number(0),
            ])
        }
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
        let sent = ContinuousClock.now
        var record = RequestRecord(
            sentAt: (sent - levelStart).seconds,
            timeToFirstToken: nil,
            interTokenLatencies: [],
            endToEnd: 0,
            promptTokens: spec.inputTokens,
            outputTokens: 0,
            succeeded: false,
            error: nil
        )
        do {
            let response = try await execute(request, client: client)
            guard response.status == .ok else {
                let text = String(buffer: try await response.body.collect(upTo: 1 << 16))
                record.error = "HTTP \(response.status.code): \(text.prefix(200))"
                record.endToEnd = (ContinuousClock.now - sent).seconds
                return record
            }
            var parser = ServerSentEvents()
            var last = sent
            var chunks = 0
            var reported: (prompt: Int, completion: Int)?
            for try await buffer in response.body {
                for event in parser.feed(buffer) {
                    guard event != "[DONE]", let data = event.data(using: .utf8),
                        let chunk = try? JSONDecoder().decode(StreamChunk.self, from: data)
                    else { continue }
                    if let usage = chunk.usage { reported = (usage.prompt_tokens, usage.completion_tokens) }
                    guard chunk.choices?.first?.textContent.isEmpty == false else { continue }
                    let now = ContinuousClock.now
                    if chunks == 0 {
                        record.timeToFirstToken = (now - sent).seconds
                    } else {
                        record.interTokenLatencies.append((now - last).seconds)
                    }
                    last = now
                    chunks += 1
                }
            }
            record.endToEnd = (ContinuousClock.now - sent).seconds
            record.outputTokens = reported?.completion ?? chunks
            if let prompt = reported?.prompt { record.promptTokens = prompt }
            record.succeeded = chunks > 0
            if chunks == 0 { record.error = "the response streamed no token" }
        } catch {
            record.endToEnd = (ContinuousClock.now - sent).seconds
            record.error = "\(error)"
        }
        return record
    }

    /// Executes a request, sending it again (up to twice) when the server closed a kept-alive connection
    /// before answering: servers such as llama.cpp's close a connection after a few requests, racing the
    /// client's reuse of it, and a request that got no response head was never processed.
    private func execute(_ request: HTTPClientRequest, client: HTTPClient) async throws -> HTTPClientResponse {
        var attempt = 0
        while true {
            do {
                return try await client.execute(
                    request, timeout: .milliseconds(Int64(spec.requestTimeout.seconds * 1000)))
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

    /// A synthetic prompt of `words` common short words, different per request so no cache serves it whole.
    static func prompt(words: Int, variant: Int) -> String {
        let vocabulary = [
            "the", "model", "serves", "many", "requests", "with", "short", "words", "and", "long", "answers", "about",
            "cats", "river", "seven", "blue", "quiet", "engine", "tokens", "light",
        ]
        let offset = abs(variant) % vocabulary.count
        return (0..<max(1, words)).map { vocabulary[($0 * 7 + offset + $0 / vocabulary.count) % vocabulary.count] }
            .joined(separator: " ")
    }

    static func json(_ object: [String: JSONValue]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(JSONValue.object(object))) ?? Data(), as: UTF8.self)
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

/// Splits a server-sent-event byte stream into the `data:` payloads of its events.
struct ServerSentEvents {
    private var pending = ""

    /// The payloads completed by `buffer`.
    mutating func feed(_ buffer: ByteBuffer) -> [String] {
        pending += String(buffer: buffer)
        var payloads: [String] = []
        while let range = pending.range(of: "\n") {
            let line = pending[..<range.lowerBound].trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
            pending.removeSubrange(..<range.upperBound)
            if line.hasPrefix("data:") {
                payloads.append(line.dropFirst(5).trimmingCharacters(in: .whitespaces))
            }
        }
        return payloads
    }
}

extension Duration {
    var seconds: Double {
        let (whole, fraction) = components
        return Double(whole) + Double(fraction) * 1e-18
    }
}
