import Autotune
import AutotuneApp
import AutotuneRunner
import AutotuneTesting
import Foundation
import Testing

/// One rule gives every command its GPUs: `--gpus`, else the task file's list, else discovery; none when the study
/// asks for none or a scheduler places trials.
@Suite struct GPUResolutionTests {
    private let inventory = FixedGPUInventory(count: 3)

    @Test func aConstraintOnGPUsNeedsThePoolEvenWithoutGPUsPerTrial() async throws {
        try await withDirectory { directory in
            let loaded = try task(
                """
                parameters: {tp: [1, 2, 4]}
                constraints: ["tp <= gpus"]
                objective: {maximize: score}
                budget: {max_trials: 2}
                experiment: {command: [/bin/echo, '{{"score": 1}}']}
                """, in: directory)
            let resolved = await GPUResolution.resolve(for: loaded.definition, inventory: inventory)
            #expect(resolved.gpus.map(\.index) == [0, 1, 2])
            #expect(resolved.source == .discovered)
        }
    }

    @Test func aDeclaredListWinsOverDiscoveryAndTheFlagOverBoth() async throws {
        try await withDirectory { directory in
            let loaded = try task(
                """
                parameters: {tp: [1, 2]}
                objective: {maximize: score}
                budget: {max_trials: 2}
                resources: {gpus: [4, 5], gpus_per_trial: [tp]}
                experiment: {command: [/bin/echo, '{{"score": 1}}']}
                """, in: directory)
            let declared = await GPUResolution.resolve(for: loaded.definition, inventory: inventory)
            #expect(declared.gpus.map(\.index) == [4, 5] && declared.source == .declared)
            let flag = await GPUResolution.resolve(for: loaded.definition, override: [7], inventory: inventory)
            #expect(flag.gpus.map(\.index) == [7] && flag.source == .override)
            let slurm = await GPUResolution.resolve(
                for: loaded.definition, override: [7], schedulerAssignsGPUs: true, inventory: inventory)
            #expect(slurm.gpus.isEmpty && slurm.source == .notNeeded)
        }
    }

    @Test func aStudyThatAsksForNoGPUsGetsNoneAndNoNote() async throws {
        try await withDirectory { directory in
            let loaded = try task(
                "parameters: {n: [1, 2]}\nobjective: {maximize: score}\nbudget: {max_trials: 2}\nexperiment: {command: [/bin/echo, x]}\n",
                in: directory)
            let resolved = await GPUResolution.resolve(
                for: loaded.definition, inventory: FixedGPUInventory([]))
            #expect(resolved.gpus.isEmpty && resolved.source == .notNeeded && resolved.note == nil)
        }
    }

    /// `speedup` leased from nvidia-smi only, so a task declaring its GPUs on a machine without nvidia-smi completed
    /// nothing; it now leases the declared ones, and each trial holds what it asked for.
    @Test func speedupLeasesTheDeclaredGPUs() async throws {
        try await withDirectory { directory in
            let loaded = try task(
                """
                parameters: {tp: [1, 2]}
                objective: {maximize: score}
                strategy: grid
                resources: {gpus: [0, 1], gpus_per_trial: [tp]}
                experiment: {command: [/bin/sh, -c, 'echo "{{\\"score\\": {tp}}}"']}
                """, in: directory)
            let measurement = try SpeedupMeasurement(
                definition: loaded.definition, levels: [2], repeats: 1, trials: 2)
            let table = try await measurement.run(
                settings: RunSettings(inventory: FixedGPUInventory([]), workingDirectory: directory))
            #expect(table.rows.map(\.completed) == [2, 2], "\(table.rows)")
            // Each trial held the GPUs it asked for, so the GPU-hours are counted.
            #expect(table.rows.allSatisfy { $0.gpuHours != nil }, "\(table.rows)")
        }
    }

    /// `validate --dry-run` leased no GPUs for a constraint on `gpus`, so the strategy's constraint read no pool.
    @Test func aDryRunOfAStudyConstrainedByGPUsSeesThePool() async throws {
        try await withDirectory { directory in
            let loaded = try task(
                """
                parameters: {tp: [1, 2, 4, 8]}
                constraints: ["tp <= gpus"]
                objective: {maximize: score}
                strategy: grid
                experiment: {command: [/bin/sh, -c, 'echo "{{\\"score\\": {tp}}}"']}
                """, in: directory)
            let dry = try await DryRun.run(
                loaded.definition,
                settings: RunSettings(inventory: FixedGPUInventory(count: 2), workingDirectory: directory))
            #expect(dry.trial.state == .completed)
            let tp = try #require(dry.trial.configuration["tp"]?.numericValue)
            #expect(tp <= 2, "the constraint read a pool of 2 GPUs")
        }
    }
}
