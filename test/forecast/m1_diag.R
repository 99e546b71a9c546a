# Per-series ets() fits on M1 for the diagnostic comparison (m1_diag.sh): the chosen model, its AICc and
# log-likelihood, the smoothing parameters and the point forecasts, plus the AICc of every candidate model.
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
fits <- list(); fcs <- list(); cands <- list()
for (s in names(groups)) {
  g <- groups[[s]]; y <- ts(g$value, frequency = g$freq[1]); h <- g$h[1]
  f <- ets(y)
  p <- f$par
  fits[[s]] <- data.frame(series = s, model = f$method, aicc = f$aicc, loglik = f$loglik,
                          alpha = unname(p["alpha"]), beta = unname(p["beta"]), gamma = unname(p["gamma"]),
                          phi = unname(p["phi"]))
  fcs[[s]] <- data.frame(series = s, step = seq_len(h), mean = as.numeric(forecast(f, h = h, PI = FALSE)$mean))
  # every candidate as ets() would fit it (same restrictions), for the AICc of each
  pos <- min(y) > 0
  for (e in c("A", "M")) for (t in c("N", "A")) for (ss in c(if (frequency(y) > 1) c("N", "A", "M") else "N"))
    for (dd in c(FALSE, TRUE)) {
      if (t == "N" && dd) next
      if (e == "A" && ss == "M") next
      if (!pos && (e == "M" || ss == "M")) next
      r <- try(ets(y, model = paste0(e, t, ss), damped = dd), silent = TRUE)
      a <- if (inherits(r, "try-error")) NA else r$aicc
      ll <- if (inherits(r, "try-error")) NA else r$loglik
      cands[[length(cands) + 1]] <- data.frame(series = s, model = paste0(e, t, if (dd) "d" else "", ss), aicc = a, loglik = ll)
    }
}
write.csv(do.call(rbind, fits), file.path(out, "r_m1_fit.csv"), row.names = FALSE)
write.csv(do.call(rbind, fcs), file.path(out, "r_m1_fc.csv"), row.names = FALSE)
write.csv(do.call(rbind, cands), file.path(out, "r_m1_cand.csv"), row.names = FALSE)
