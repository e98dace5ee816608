public import Autotune
import AutotuneRunner

extension StoredStudy {
    /// What the study's strategy recommends from its checkpoint (``Strategy/recommendation()``): the built-in
    /// strategies are rebuilt here and asked; a plug-in is not started for it (`nil`).
    public func modelRecommendation(constants: [String: Double] = [:]) async -> StrategyRecommendation? {
        let registry = StrategyRegistry.builtIn
        guard registry.names.contains(definition.strategy.name), let checkpoint else { return nil }
        guard
            var strategy = try? await registry.make(
                definition.strategy.name, context: definition.strategyContext(constants: constants),
                state: checkpoint)
        else { return nil }
        return await strategy.recommendation()
    }

    /// What the study found, the strategy's recommendation included.
    public func result(trials: [Trial], constants: [String: Double] = [:]) async -> StudyResult {
        let model = definition.confirm == nil ? await modelRecommendation(constants: constants) : nil
        return StudyResult(definition: definition, trials: trials, best: best, model: model)
    }
}
