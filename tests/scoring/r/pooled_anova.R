# Pooled within-authority variance of mystery visit scores, per (category, channel):
# the residual mean square and df of the one-way ANOVA of score on authority.
#   Rscript tests/scoring/r/pooled_anova.R tests/scoring/r/visits.csv > tests/scoring/r/pooled_anova.out
# Base R only (stats::lm, stats::anova). Output: CSV after two comment lines, one row per
# (category, channel) with at least one residual df.
args <- commandArgs(trailingOnly = TRUE)
visits <- read.csv(if (length(args)) args[1] else "visits.csv", stringsAsFactors = FALSE)
cat("# ", R.version.string, "\n", sep = "")
cat("# call: anova(lm(score ~ factor(authority), data = pool)) per (category, channel)\n")
cat("category,channel,residual_mean_square,df\n")
keys <- unique(visits[, c("category", "channel")])
keys <- keys[order(keys$category, keys$channel), ]
for (i in seq_len(nrow(keys))) {
  pool <- visits[visits$category == keys$category[i] & visits$channel == keys$channel[i], ]
  if (nrow(pool) <= length(unique(pool$authority))) next  # no replicate: no residual df
  table <- anova(lm(score ~ factor(authority), data = pool))
  residual <- table["Residuals", ]
  cat(sprintf("%s,%s,%.17g,%d\n", keys$category[i], keys$channel[i],
              residual[["Mean Sq"]], as.integer(residual[["Df"]])))
}
