# Per-series ets() fits on M1 for the diagnostic comparison (m1_diag.sh): the chosen model, its AICc and
# log-likelihood, the smoothing parameters and the point forecasts; also writes R's forecasts and time in the
# format of compare_r.R, so that compare_r.sh can reuse them (same R_CACHE directory, same sample).
# Usage: Rscript m1_diag.R <data_dir> <out_dir> [sample]
suppressMessages(library(forecast))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(gzfile(file.path(args[1], "m1.csv.gz")))
out <- args[2]
sample_n <- if (length(args) >= 3) as.integer(args[3]) else 0L
d <- d[d$split == "train", ]
d <- d[order(d$series, d$t), ]
groups <- split(d, d$series)
if (sample_n > 0 && sample_n < length(groups)) { set.seed(1); groups <- groups[sort(sample(length(groups), sample_n))] }
fits <- list(); fcs <- list(); secs <- 0
for (s in names(groups)) {
  g <- groups[[s]]; y <- ts(g$value, frequency = g$freq[1]); h <- g$h[1]
  t0 <- proc.time()[["elapsed"]]
  f <- ets(y)
  fc <- as.numeric(forecast(f, h = h, PI = FALSE)$mean)
  secs <- secs + proc.time()[["elapsed"]] - t0
  p <- f$par
  fits[[s]] <- data.frame(series = s, model = f$method, aicc = f$aicc, loglik = f$loglik,
                          alpha = unname(p["alpha"]), beta = unname(p["beta"]), gamma = unname(p["gamma"]),
                          phi = unname(p["phi"]))
  fcs[[s]] <- data.frame(series = s, method = "ets", step = seq_len(h), mean = fc)
  if (length(fits) %% 50 == 0) cat(length(fits), "series\n")
}
write.csv(do.call(rbind, fits), file.path(out, "r_m1_fit.csv"), row.names = FALSE)
write.csv(do.call(rbind, fcs), file.path(out, "r_m1.csv"), row.names = FALSE)
write.csv(data.frame(method = "ets", seconds = secs, series = length(groups)), file.path(out, "r_m1_time.csv"), row.names = FALSE)
writeLines(as.character(sample_n), file.path(out, "r_m1_sample"))
cat(sprintf("R ets: %d series in %.1f s\n", length(groups), secs))
