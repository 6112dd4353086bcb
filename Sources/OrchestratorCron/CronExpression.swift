// Placeholder so the target builds; replaced by the cron evaluator.
public enum CronPlaceholder {}
