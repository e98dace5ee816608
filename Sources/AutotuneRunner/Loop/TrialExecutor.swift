import Autotune
import Foundation
import Logging

/// Runs one trial from start to end, outside the loop's actor: leases its GPUs and port, runs the
/// experiment under the trial's deadline, scores the metrics, and always gives the leases back.
///
/// Never throws: every failure becomes a failed trial with its stage, and cancellation an interrupted one.
struct TrialExecutor: Sendable {
    var experiment: any Experiment
    var objective: Objective
    var deadline: Duration?
    var gpuRequest: GPURequest?
    var pool: GPUPool?
    var ports: PortAllocator?
    var ledger: (any ResourceLedger)?

    /// The attempt on which a trial whose program was stopped from outside fails instead of running again.
    static let outsideStops = 3

    @concurrent
    func execute(_ trial: Trial, context: TrialContext) async -> Trial {
        var trial = trial
        var context = context
        let start = ContinuousClock.now
        let me = RunnerIdentity.current
        let holder = LeaseHolder(
            host: me.host, pid: me.pid, study: context.study, trial: trial.number, started: me.started)
        do {
            try FileManager.default.createDirectory(at: context.directory, withIntermediateDirectories: true)
            do {
                if let gpuRequest, pool == nil {
                    // The experiment's scheduler gives the GPUs; it only needs to know how many to ask for.
                    context.gpuCount = try gpuRequest.gpuCount(for: trial.configuration)
                }
                if let gpuRequest, let pool {
                    let count = try gpuRequest.gpuCount(for: trial.configuration)
                    context.gpus = try await pool.acquire(
                        count,
                        minimumFreeMemoryMiB: gpuRequest.minimumFreeMemoryMiB,
                        holder: holder
                    )
                }
                if let ports { context.port = try await ports.reserve(for: holder) }
            } catch let error as ResourceError {
                throw ExperimentError(stage: .resources, message: error.message)
            } catch let error as GPURequestError {
                throw ExperimentError(stage: .resources, message: error.message)
            }
            trial.timings[TrialStage.resources.rawValue] = (ContinuousClock.now - start).seconds
            let experiment = self.experiment
            context.deadline = deadline
            let prepared = context
            let result = try await withTimeout(deadline, error: { DeadlineExceeded() }) {
                try await experiment.run(prepared)
            }
            trial.metrics = result.metrics
            if let gpus = result.gpus { context.gpus = gpus }
            trial.host = result.host
            trial.timings.merge(result.timings) { _, new in new }
            switch objective.evaluate(result.metrics) {
            case _ where result.pruned != nil:
                trial.state = .pruned
                trial.error = TrialError(stage: .objective, message: "pruned: \(result.pruned!)")
            case .success(let score):
                trial.state = .completed
                trial.score = score
            case .failure(let failure):
                trial.state = .failed
                var message = failure.description
                if case .missingMetric(let name, _) = failure, let hint = result.metricsHint {
                    message += "; " + hint.replacingOccurrences(of: "{metric}", with: name)
                }
                trial.error = TrialError(stage: .objective, message: message)
            }
        } catch let error as ExperimentError
            where (error.stoppedFromOutside || error.stage == .lost) && trial.attempt < Self.outsideStops
        {
            // Not the configuration's fault: the terminal's Ctrl-C reaches the trial's programs at the same moment
            // as Autotune, which may hear the program's end before its own signal; or the cluster lost the node
            // the trial ran on. The trial runs again (and one that keeps being stopped fails on its last attempt,
            // rather than loop).
            let why = error.stage == .lost ? "its node was lost" : "stopped from outside"
            trial.error = TrialError(stage: .interrupted, message: "\(error.message): \(why), it runs again")
        } catch let error as ExperimentError {
            trial.state = .failed
            trial.metrics = error.metrics
            trial.error = TrialError(stage: error.stage, message: error.fullMessage)
            if let placement = error.placement {
                trial.host = placement.node
                if let gpus = placement.gpus { context.gpus = gpus }
            }
        } catch is DeadlineExceeded {
            trial.state = .failed
            trial.error = TrialError(
                stage: .timeout,
                message: "the trial ran past its deadline of \(ProgressFormat.duration(deadline?.seconds ?? 0))"
            )
        } catch {
            if Task.isCancelled || error is CancellationError {
                trial.error = TrialError(stage: .interrupted, message: "stopped before it finished")
            } else {
                trial.state = .failed
                trial.error = TrialError(stage: .run, message: "\(error)")
            }
        }
        if context.gpus?.isEmpty == false || context.port != nil, let ledger {
            do {
                try await ledger.release(holder)
            } catch {
                context.logger.error(
                    "Releasing the trial's GPUs and port failed",
                    metadata: ["trial.number": "\(trial.number)", "error": "\(error)"]
                )
            }
        }
        trial.gpus = context.gpus
        trial.port = context.port
        trial.timings["total"] = (ContinuousClock.now - start).seconds
        trial.finishedAt = Date()
        return trial
    }
}

/// The trial's deadline passed.
struct DeadlineExceeded: Error {}

extension TrialExecutor {
    /// The executor of `definition`'s trials: a GPU pool when trials lease GPUs here (not when the
    /// experiment's scheduler places them), port reservations when the experiment uses `{port}`.
    ///
    /// A lease is taken back from a holder only once its runner is gone and no process of its trial (found by the
    /// trial's token, in the store at `storeLocation`) runs on this machine: a dead runner's experiments may run
    /// on, and their GPUs and ports are theirs until they end.
    init(definition: StudyDefinition, experiment: any Experiment, options: StudyLoop.Options, storeLocation: String)
        throws
    {
        let ledger = options.ledger.map { ledger -> any ResourceLedger in
            guard let locks = options.hostLocks else { return ledger }
            return HostLockedLedger(base: ledger, locks: locks, gpus: options.gpus) { holder in
                TrialProcesses.token(storeLocation: storeLocation, study: holder.study, trial: holder.trial)
            }
        }
        let holderIsAlive = TrialProcesses.leaseHolderIsAlive(storeLocation: storeLocation)
        var pool: GPUPool?
        if definition.resources.gpusPerTrial != nil, !experiment.schedulerAssignsGPUs {
            guard let ledger else {
                throw AutotuneError(.configuration, "the study leases GPUs but the runner has no ledger")
            }
            pool = GPUPool(gpus: options.gpus, ledger: ledger, holderIsAlive: holderIsAlive)
        }
        var ports: PortAllocator?
        if definition.experiment.usesPort {
            guard let ledger else {
                throw AutotuneError(.configuration, "the study reserves ports but the runner has no ledger")
            }
            ports = PortAllocator(range: definition.resources.ports, ledger: ledger, holderIsAlive: holderIsAlive)
        }
        self.init(
            experiment: experiment,
            objective: definition.objective,
            deadline: definition.timeouts.trial,
            gpuRequest: definition.resources.gpusPerTrial,
            pool: pool,
            ports: ports,
            ledger: ledger
        )
    }
}
