% rebase('base')
<section class="error-page">
  <p class="error-code">{{code}}</p>
  <h1>{{page_title}}</h1>
  % if message:
  <p>{{message}}</p>
  % end
  <p><a href="/">Latest articles</a> · <a href="/cards">All cards</a></p>
</section>
