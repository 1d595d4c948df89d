// /console/migration: the chart of accounts by the origins their keys are registered for
// (Chart.js from static/vendor; data from the page's JSON block).
(() => {
  const data = JSON.parse(document.getElementById("migration-data").textContent);
  const canvas = document.getElementById("migration-chart");
  const chart = new window.Chart(canvas, {
    type: "bar",
    data: {
      labels: data.labels,
      datasets: [
        {
          label: "Accounts",
          data: data.counts,
          backgroundColor: ["#8e8e8e", "#1e88e5", "#43a047"],
        },
      ],
    },
    options: {
      indexAxis: "y",
      animation: false,
      plugins: { legend: { display: false } },
      scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
    },
  });
  canvas.dataset.rendered = String(chart.data.datasets[0].data.length);
})();
