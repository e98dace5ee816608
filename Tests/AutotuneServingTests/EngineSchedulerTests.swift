import AutotuneServing
import Testing

private func settings(_ configure: (inout EngineSettings) -> Void = { _ in }) -> EngineSettings {
    var settings = EngineSettings()
    settings.maxNumBatchedTokens = 8192
    configure(&settings)
    return settings
}

/// Runs the scheduler to completion; returns simulated seconds and tokens per request.
private func drain(_ scheduler: inout EngineScheduler) -> (seconds: Double, tokens: [Int: Int], steps: Int) {
    var seconds = 0.0
    var tokens: [Int: Int] = [:]
    var steps = 0
    while !scheduler.isIdle, steps < 1_000_000 {
        let step = scheduler.step()
        seconds += step.seconds
        for (id, _) in step.tokens { tokens[id, default: 0] += 1 }
        steps += 1
    }
    return (seconds, tokens, steps)
}

@Suite struct EngineSchedulerTests {
    @Test func everyRequestGetsExactlyItsTokens() {
        var scheduler = EngineScheduler(settings: settings())
        for id in 0..<50 { scheduler.submit(id: id, promptTokens: 100 + id, maxTokens: 20 + id % 7) }
        let (_, tokens, _) = drain(&scheduler)
        #expect(tokens.count == 50)
        for id in 0..<50 { #expect(tokens[id] == 20 + id % 7) }
    }

    @Test func moreSequencesAtOnceMeansMoreThroughputUntilTheCacheRunsOut() {
        func throughput(maxNumSeqs: Int, utilization: Double = 0.9) -> (tokensPerSecond: Double, preemptions: Int) {
            var scheduler = EngineScheduler(
                settings: settings {
                    $0.maxNumSeqs = maxNumSeqs; $0.gpuMemoryUtilization = utilization
                })
            for id in 0..<256 { scheduler.submit(id: id, promptTokens: 512, maxTokens: 256) }
            let (seconds, tokens, _) = drain(&scheduler)
            return (Double(tokens.values.reduce(0, +)) / seconds, scheduler.preemptions)
        }
        let small = throughput(maxNumSeqs: 8)
        let medium = throughput(maxNumSeqs: 64)
        #expect(medium.tokensPerSecond > 2.5 * small.tokensPerSecond)
        #expect(small.preemptions == 0)
        // With the cache too small for 256 long sequences, preemption recomputes work and throughput drops.
        let crowded = throughput(maxNumSeqs: 256, utilization: 0.88)
        #expect(crowded.preemptions > 0)
    }

    @Test func withoutChunkedPrefillArrivalsStallDecodes() {
        func worstGap(chunked: Bool) -> Double {
            var scheduler = EngineScheduler(
                settings: settings {
                    $0.enableChunkedPrefill = chunked; $0.maxNumBatchedTokens = 4096
                })
            scheduler.submit(id: 0, promptTokens: 100, maxTokens: 200)
            var gap = 0.0
            var sinceToken = 0.0
            for step in 0..<200 {
                if step % 10 == 5 { scheduler.submit(id: step + 1, promptTokens: 4000, maxTokens: 1) }
                let result = scheduler.step()
                sinceToken += result.seconds
                if result.tokens.contains(where: { $0.id == 0 }) {
                    gap = max(gap, sinceToken)
                    sinceToken = 0
                }
            }
            return gap
        }
        #expect(worstGap(chunked: false) > worstGap(chunked: true))
    }

    @Test func tensorParallelismSpeedsUpSteps() {
        let one = settings().stepSecondsForTest(decodes: 64, prefill: 0)
        let two = settings { $0.tensorParallelSize = 2 }.stepSecondsForTest(decodes: 64, prefill: 0)
        #expect(two < one)
        #expect(two > one / 2)
    }

    @Test func theEngineRefusesToStartLikeVLLM() {
        #expect(settings().startupProblem(visibleGPUs: 1) == nil)
        #expect(settings().startupProblem(visibleGPUs: 2)?.contains("tensor_parallel_size=1 but 2 GPU(s)") == true)
        #expect(
            settings { $0.gpuMemoryUtilization = 0.97 }.startupProblem(visibleGPUs: nil)?.contains("out of memory")
                == true)
        #expect(
            settings { $0.maxNumBatchedTokens = 2048 }.startupProblem(visibleGPUs: nil)?.contains(
                "max_num_batched_tokens") == true)
        #expect(
            settings { $0.gpuMemoryUtilization = 0.8 }.startupProblem(visibleGPUs: nil)?.contains("No available memory")
                == true)
        #expect(
            settings {
                $0.gpuMemoryUtilization = 0.8; $0.tensorParallelSize = 2
            }.startupProblem(visibleGPUs: 2) == nil)
    }
}
