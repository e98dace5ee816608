import Foundation

/// The settings of the simulated engine, named after vLLM's flags, plus the simulated hardware and model.
public struct EngineSettings: Sendable, Hashable, Codable {
    /// The most sequences scheduled at once (`--max-num-seqs`).
    public var maxNumSeqs = 256
    /// The most tokens one step processes (`--max-num-batched-tokens`).
    public var maxNumBatchedTokens = 2048
    /// The share of each GPU's memory the engine may use (`--gpu-memory-utilization`).
    public var gpuMemoryUtilization = 0.9
    /// Prefill in chunks alongside decodes instead of in steps of its own (`--enable-chunked-prefill`).
    public var enableChunkedPrefill = false
    /// GPUs one model instance spans (`--tensor-parallel-size`).
    public var tensorParallelSize = 1
    /// Tokens per KV-cache block (`--block-size`).
    public var blockSize = 16
    /// Reuse the KV blocks of prompt prefixes computed before (`--enable-prefix-caching`): a prompt whose leading
    /// blocks are cached prefills only the rest.
    public var enablePrefixCaching = false
    /// The longest prompt plus output (`--max-model-len`).
    public var maxModelLength = 4096
    /// Memory of one simulated GPU, GiB.
    public var gpuMemoryGiB = 80.0
    /// The simulated model's weights, GiB (a 30B-parameter model in bf16).
    public var modelWeightsGiB = 60.0
    /// KV-cache bytes per token for the whole model.
    public var kvBytesPerToken = 196_608.0

    /// The default settings.
    public init() {}

    /// Memory reserved for activations and graphs: grows with the batch the engine must be able to run.
    var activationGiB: Double {
        0.5 + Double(maxNumBatchedTokens) * 0.0006 + Double(maxNumSeqs) * 0.002
    }

    /// KV-cache capacity in tokens across the tensor-parallel group.
    public var kvCapacityTokens: Int {
        let perGPU = gpuMemoryUtilization * gpuMemoryGiB - modelWeightsGiB / Double(tensorParallelSize) - activationGiB
        return max(0, Int(perGPU * Double(tensorParallelSize) * 1_073_741_824 / kvBytesPerToken))
    }

    /// Why the engine refuses to start with these settings on `visibleGPUs` GPUs, or `nil`.
    ///
    /// The messages follow vLLM's, so logs look like the real thing.
    public func startupProblem(visibleGPUs: Int?) -> String? {
        if let visibleGPUs, visibleGPUs != tensorParallelSize {
            return
                "ValueError: tensor_parallel_size=\(tensorParallelSize) but \(visibleGPUs) GPU(s) are visible (CUDA_VISIBLE_DEVICES)"
        }
        if gpuMemoryUtilization > 0.95 {
            return
                "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate \(Int(gpuMemoryUtilization * gpuMemoryGiB)) GiB; other processes hold the rest (gpu_memory_utilization=\(gpuMemoryUtilization) is too high)"
        }
        if !enableChunkedPrefill, maxNumBatchedTokens < maxModelLength {
            return
                "ValueError: max_num_batched_tokens (\(maxNumBatchedTokens)) is smaller than max_model_len (\(maxModelLength)). Enable chunked prefill or raise max_num_batched_tokens."
        }
        let capacity = kvCapacityTokens
        if capacity < maxModelLength {
            return
                "ValueError: No available memory for the cache blocks: \(capacity) tokens fit, max_model_len is \(maxModelLength). Raise gpu_memory_utilization, tensor_parallel_size, or lower max_num_batched_tokens / max_num_seqs."
        }
        return nil
    }

    /// Seconds of a step with `decodes` sequences and `prefill` prompt tokens (for tests and docs).
    public func stepSecondsForTest(decodes: Int, prefill: Int) -> Double {
        stepSeconds(decodes: decodes, prefillTokens: prefill, contextTokens: 0)
    }

    /// Seconds one step takes: a fixed launch cost, plus per-sequence and per-token work, sped up by tensor
    /// parallelism (sub-linearly) and slowed by its communication.
    func stepSeconds(decodes: Int, prefillTokens: Int, contextTokens: Int) -> Double {
        let work = 0.006 + 0.00008 * Double(decodes) + 0.00004 * Double(prefillTokens) + 2e-8 * Double(contextTokens)
        let parallel = Double(tensorParallelSize)
        return work / pow(parallel, 0.85) + 0.0004 * (parallel - 1)
    }
}

/// The request queue and batch of a continuous-batching engine, advanced one step at a time.
///
/// A value type with no clock and no I/O: `step()` says what one forward pass does and how long it takes, and
/// the server sleeps that long and streams the tokens. Decodes come first; prefill fills the rest of the token
/// budget (chunked) or, without chunked prefill, gets steps of its own while decodes wait, as in vLLM's v0
/// scheduler. KV blocks are counted; when a decode needs a block and none is free, the newest sequence is
/// preempted and later recomputed.
public struct EngineScheduler: Sendable {
    /// One request in the engine.
    struct Sequence: Sendable {
        let id: Int
        let promptTokens: Int
        let maxTokens: Int
        /// The hashes of the prompt's full blocks, each chained to the ones before (vLLM's prefix hashing).
        var blockHashes: [UInt64] = []
        var prefilled = 0
        var generated = 0
        /// Tokens to prefill: the prompt, plus what was generated before a preemption.
        var prefillTarget: Int
        var blocks = 0

        var isPrefilled: Bool { prefilled >= prefillTarget }
        /// Tokens held in the KV cache.
        var contextTokens: Int { isPrefilled ? promptTokens + generated : prefilled }
    }

    /// What a step did.
    public struct Step: Sendable, Equatable {
        /// Seconds the step takes.
        public var seconds: Double
        /// Requests that got one more token, with whether it was their last.
        public var tokens: [(id: Int, finished: Bool)]
        /// Requests preempted this step.
        public var preempted: [Int]
        /// Sequences decoded.
        public var decodes: Int
        /// Prompt tokens prefilled.
        public var prefillTokens: Int

        public static func == (lhs: Self, rhs: Self) -> Bool {
            lhs.seconds == rhs.seconds && lhs.tokens.map(\.id) == rhs.tokens.map(\.id)
                && lhs.tokens.map(\.finished) == rhs.tokens.map(\.finished) && lhs.preempted == rhs.preempted
        }
    }

    let settings: EngineSettings
    private var waiting: [Sequence] = []
    private var running: [Sequence] = []
    private var freeBlocks: Int
    /// Preemptions so far.
    public private(set) var preemptions = 0
    /// Prompt tokens served from the prefix cache so far, and prompt tokens computed.
    public private(set) var cachedPromptTokens = 0
    /// Prompt tokens computed so far.
    public private(set) var computedPromptTokens = 0
    /// The prefix cache: block hashes, least recently used first, bounded by the KV cache's blocks.
    private var prefixCache: [UInt64: Int] = [:]
    private var prefixClock = 0

    /// Creates an idle scheduler.
    public init(settings: EngineSettings) {
        self.settings = settings
        self.freeBlocks = settings.kvCapacityTokens / settings.blockSize
    }

    /// Whether there is nothing to do.
    public var isIdle: Bool { waiting.isEmpty && running.isEmpty }

    /// Sequences being processed and waiting.
    public var load: (running: Int, waiting: Int) { (running.count, waiting.count) }

    /// Queues a request; `blockHashes` are its prompt's full blocks, for the prefix cache.
    public mutating func submit(id: Int, promptTokens: Int, maxTokens: Int, blockHashes: [UInt64] = []) {
        waiting.append(
            Sequence(
                id: id, promptTokens: max(1, promptTokens), maxTokens: max(1, maxTokens), blockHashes: blockHashes,
                prefillTarget: max(1, promptTokens)))
    }

    /// The prompt tokens of `sequence` the prefix cache holds: its leading blocks found there, all but the last
    /// token at most (a prompt's last token is always computed, for its first output token).
    private mutating func cachedPrefix(of sequence: Sequence) -> Int {
        guard settings.enablePrefixCaching else { return 0 }
        var hits = 0
        for hash in sequence.blockHashes {
            guard prefixCache[hash] != nil else { break }
            prefixClock += 1
            prefixCache[hash] = prefixClock
            hits += 1
        }
        return min(hits * settings.blockSize, sequence.promptTokens - 1)
    }

    /// Keeps a prefilled prompt's blocks in the prefix cache, the least recently used leaving first once it holds
    /// as many blocks as the KV cache.
    ///
    /// Eviction goes down to 15/16 of the capacity at once: finding the oldest blocks is a sort, and sorting on
    /// every prompt once the cache is full made the engine itself slow on traffic that shares nothing (a cost
    /// vLLM's free-block queue does not have, so the simulation must not either).
    private mutating func remember(_ sequence: Sequence) {
        guard settings.enablePrefixCaching, !sequence.blockHashes.isEmpty else { return }
        for hash in sequence.blockHashes {
            prefixClock += 1
            prefixCache[hash] = prefixClock
        }
        let capacity = max(1, settings.kvCapacityTokens / settings.blockSize)
        if prefixCache.count > capacity {
            let keep = capacity - capacity / 16
            let oldest = prefixCache.sorted { $0.value < $1.value }.prefix(prefixCache.count - keep)
            for (hash, _) in oldest { prefixCache[hash] = nil }
        }
    }

    /// Drops a request (the client went away).
    public mutating func cancel(id: Int) {
        if let index = running.firstIndex(where: { $0.id == id }) {
            freeBlocks += running[index].blocks
            running.remove(at: index)
        }
        waiting.removeAll { $0.id == id }
    }

    /// Runs one forward pass.
    public mutating func step() -> Step {
        var budget = settings.maxNumBatchedTokens
        var preempted: [Int] = []
        var decodeIDs: [Int] = []
        var prefillTokens = 0

        let hasWaitingPrefill = !waiting.isEmpty && running.count < settings.maxNumSeqs
        let prefillOnly = !settings.enableChunkedPrefill && hasWaitingPrefill && canAdmit(waiting[0])
        if !prefillOnly {
            // Decodes: one token each, a new block at each block boundary.
            var index = 0
            while index < running.count {
                guard running[index].isPrefilled else {
                    index += 1
                    continue
                }
                if running[index].contextTokens % settings.blockSize == 0 {
                    if freeBlocks == 0 {
                        // Preempt the newest sequence (maybe this one) and retry.
                        let victim = running.removeLast()
                        freeBlocks += victim.blocks
                        preempted.append(victim.id)
                        preemptions += 1
                        var requeued = victim
                        requeued.prefillTarget = victim.promptTokens + victim.generated
                        requeued.prefilled = 0
                        requeued.blocks = 0
                        waiting.insert(requeued, at: 0)
                        continue
                    }
                    freeBlocks -= 1
                    running[index].blocks += 1
                }
                decodeIDs.append(running[index].id)
                budget -= 1
                index += 1
            }
        }
        // Prefill: chunks of partial prompts first, then new admissions.
        var completedPrefills: [Int] = []
        if settings.enableChunkedPrefill || prefillOnly {
            for index in running.indices where !running[index].isPrefilled && budget > 0 {
                let chunk = min(budget, running[index].prefillTarget - running[index].prefilled)
                guard Self.allocate(&running[index], tokens: chunk, blockSize: settings.blockSize, free: &freeBlocks)
                else { break }
                running[index].prefilled += chunk
                budget -= chunk
                prefillTokens += chunk
                if running[index].isPrefilled { completedPrefills.append(running[index].id) }
            }
            while budget > 0, !waiting.isEmpty, running.count < settings.maxNumSeqs {
                var sequence = waiting[0]
                // A fresh prompt (not a recompute after preemption) starts past what the prefix cache holds.
                let cached = sequence.prefillTarget == sequence.promptTokens ? peekCachedPrefix(of: sequence) : 0
                let remaining = sequence.prefillTarget - cached
                let chunk = settings.enableChunkedPrefill ? min(budget, remaining) : remaining
                guard chunk <= budget,
                    Self.allocate(&sequence, tokens: cached + chunk, blockSize: settings.blockSize, free: &freeBlocks)
                else { break }
                waiting.removeFirst()
                if cached > 0 { cachedPromptTokens += cachedPrefix(of: sequence) }
                sequence.prefilled = cached + chunk
                budget -= chunk
                prefillTokens += chunk
                running.append(sequence)
                if sequence.isPrefilled { completedPrefills.append(sequence.id) }
            }
        }
        computedPromptTokens += prefillTokens
        for id in completedPrefills {
            if let sequence = running.first(where: { $0.id == id }) { remember(sequence) }
        }
        let context = running.filter { decodeIDs.contains($0.id) }.reduce(0) { $0 + $1.contextTokens }
        let seconds = settings.stepSeconds(
            decodes: decodeIDs.count, prefillTokens: prefillTokens, contextTokens: context)

        // Emit: a decode yields a token; a completed prefill yields the first token (unless it was a recompute).
        var tokens: [(id: Int, finished: Bool)] = []
        for id in decodeIDs + completedPrefills {
            guard let index = running.firstIndex(where: { $0.id == id }) else { continue }
            let recomputed = running[index].prefillTarget > running[index].promptTokens
            if completedPrefills.contains(id), recomputed, !decodeIDs.contains(id) { continue }
            running[index].generated += 1
            let finished = running[index].generated >= running[index].maxTokens
            tokens.append((id, finished))
            if finished {
                freeBlocks += running[index].blocks
                running.remove(at: index)
            }
        }
        return Step(
            seconds: seconds, tokens: tokens, preempted: preempted, decodes: decodeIDs.count,
            prefillTokens: prefillTokens)
    }

    /// ``cachedPrefix(of:)`` without touching the cache's recency, to decide before admitting.
    private func peekCachedPrefix(of sequence: Sequence) -> Int {
        guard settings.enablePrefixCaching else { return 0 }
        let hits = sequence.blockHashes.prefix { prefixCache[$0] != nil }.count
        return min(hits * settings.blockSize, sequence.promptTokens - 1)
    }

    private func canAdmit(_ sequence: Sequence) -> Bool {
        sequence.prefillTarget <= settings.maxNumBatchedTokens
            && (sequence.prefillTarget + settings.blockSize - 1) / settings.blockSize <= freeBlocks
    }

    /// Takes the blocks `tokens` more prefilled tokens need from `free`; false when the cache is full.
    private static func allocate(_ sequence: inout Sequence, tokens: Int, blockSize: Int, free: inout Int) -> Bool {
        let needed = (sequence.prefilled + tokens + blockSize - 1) / blockSize - sequence.blocks
        guard needed <= free else { return false }
        free -= max(0, needed)
        sequence.blocks += max(0, needed)
        return true
    }
}
